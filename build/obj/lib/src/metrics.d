build/obj/lib/src/metrics.o: lib/src/metrics.c lib/include/ds/metrics.h
lib/include/ds/metrics.h:
