build/obj/lib/src/log.o: lib/src/log.c lib/include/ds/log.h
lib/include/ds/log.h:
