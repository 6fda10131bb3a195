build/obj/lib/src/config.o: lib/src/config.c lib/include/ds/config.h
lib/include/ds/config.h:
