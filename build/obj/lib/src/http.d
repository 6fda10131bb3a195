build/obj/lib/src/http.o: lib/src/http.c lib/include/ds/http.h \
 lib/include/ds/metrics.h lib/include/ds/log.h
lib/include/ds/http.h:
lib/include/ds/metrics.h:
lib/include/ds/log.h:
