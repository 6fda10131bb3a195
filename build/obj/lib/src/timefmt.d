build/obj/lib/src/timefmt.o: lib/src/timefmt.c lib/include/ds/timefmt.h
lib/include/ds/timefmt.h:
