build/obj/lib/src/pg.o: lib/src/pg.c lib/include/ds/pg.h \
 /usr/include/postgresql/libpq-fe.h \
 /usr/include/postgresql/postgres_ext.h \
 /usr/include/postgresql/pg_config_ext.h lib/include/ds/log.h
lib/include/ds/pg.h:
/usr/include/postgresql/libpq-fe.h:
/usr/include/postgresql/postgres_ext.h:
/usr/include/postgresql/pg_config_ext.h:
lib/include/ds/log.h:
