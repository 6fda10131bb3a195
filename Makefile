# Decision store - top-level build.
#
#   make            build every program into build/bin/
#   make run        install what is missing, build, start the local stack
#   make test       install what is missing, build, run every test twice:
#                   normal build, then AddressSanitizer + UBSan (build/asan);
#                   builds with TEST_JOBS=2 jobs, runs the tests one at a time
#   make bench      run the benchmarks in bench/
#   make fuzz       build the libFuzzer harnesses (clang, build/fuzz) and run
#                   each for FUZZ_SECONDS (default 60); FUZZ_TARGETS picks some
#
# One non-recursive Makefile: BUILD selects the output tree and SAN=1 the
# sanitizer flavour, so the two test passes never share object files.

BUILD ?= build
SAN   ?= 0
CC    ?= cc

# libcurl: libds's HTTP client (lib/src/httpclient.c), so every program links it.
# zlib: decision-replay inflates archive blocks itself (replay/src/filereader.h).
PKGS := libh2o libuv avro-c jansson libpq libcrypto libssl rdkafka lmdb libcurl zlib
# rdkafka is librdkafka 2.8.0 built static from Debian trixie's source package
# by deploy/librdkafka.sh (which `make deps` runs): bookworm's 2.0.2 cannot log
# in to Kafka 4 with SCRAM. RDKAFKA=system builds against the system's
# librdkafka-dev instead (use another BUILD), e.g. to compare the two.
RDKAFKA ?= local
ifeq ($(RDKAFKA),system)
PKG_CONFIG := pkg-config
else
RDKAFKA_PC := $(shell bash deploy/librdkafka.sh --dir)
RDKAFKA_PCFILE := $(wildcard $(RDKAFKA_PC)/rdkafka.pc)
PKG_CONFIG := PKG_CONFIG_PATH=$(RDKAFKA_PC)$(if $(PKG_CONFIG_PATH),:$(PKG_CONFIG_PATH)) pkg-config
ifeq ($(RDKAFKA_PCFILE),)
ifneq ($(filter-out deps test clean,$(or $(MAKECMDGOALS),all)),)
$(error librdkafka 2.8.0 is not built yet: run `make deps` (deploy/librdkafka.sh builds it once, in about a minute))
endif
endif
endif
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)

CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
          -D_GNU_SOURCE -DH2O_USE_LIBUV=1 -fno-omit-frame-pointer \
          -Ilib/include -Ischemas/include -I$(BUILD)/gen $(PKG_CFLAGS) -MMD -MP
LDLIBS += $(PKG_LIBS) -lpthread -lm
ifeq ($(SAN),1)
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined
CFLAGS  += $(SANFLAGS) -O1
LDFLAGS += $(SANFLAGS)
endif
# The libFuzzer flavour (make fuzz, with CC=clang): every object carries the
# fuzzer's coverage instrumentation; only the harness links its engine.
ifeq ($(FUZZ),1)
CFLAGS  += -fsanitize=fuzzer-no-link,address,undefined -O1
LDFLAGS += -fsanitize=address,undefined
endif

LIB_SRCS    := $(wildcard lib/src/*.c)
SCHEMA_SRCS := $(wildcard schemas/src/*.c)
SCHEMA_DATA := schemas/decision/manifest.json $(sort $(wildcard schemas/decision/v*.avsc))
# The tests' schema set (dtFixtureSchemas): version 1 is the shipped file
# itself, and so is version 2; version 3 is a test-only evolution of it.
FIXTURE_DATA := tests/fixtures/schemas/manifest.json schemas/decision/v1.avsc schemas/decision/v2.avsc tests/fixtures/schemas/v3.avsc
API_SRCS    := $(wildcard decision-api/src/*.c)
# stream-processor modules other than main.c form a library, so unit tests
# can link them; the same holds for future programs.
SP_SRCS     := $(filter-out stream-processor/src/main.c,$(wildcard stream-processor/src/*.c))
RP_SRCS     := $(filter-out %_main.c,$(wildcard replay/src/*.c))
VS_SRCS     := $(filter-out variable-store/src/main.c,$(wildcard variable-store/src/*.c))
DEVKAFKA_SRCS := $(wildcard tools/dev-kafka/*.c)
TSUP_SRCS   := $(wildcard tests/support/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIBDS     := $(BUILD)/lib/libds.a
LIBSCHEMA := $(BUILD)/lib/libdsschema.a
LIBTSUP   := $(BUILD)/lib/libdstest.a
LIBSP     := $(BUILD)/lib/libsp.a
LIBRP     := $(BUILD)/lib/librp.a
LIBVS     := $(BUILD)/lib/libvs.a
# Program libraries tests link (those with sources so far).
PROGLIBS  := $(if $(SP_SRCS),$(LIBSP)) $(if $(RP_SRCS),$(LIBRP)) $(if $(VS_SRCS),$(LIBVS))
EMBED_C   := $(BUILD)/gen/schemas_embedded.c
FIXTURE_C := $(BUILD)/gen/fixture_schemas.c
FIXTURE_O := $(BUILD)/obj/gen/fixture_schemas.o
# Only pattern rules name it, which would make it an intermediate file that
# make deletes after each run (and then relinks every test for).
.SECONDARY: $(FIXTURE_O)
MIGR_C    := $(BUILD)/gen/migrations_embedded.c
MIGRATIONS := $(sort $(wildcard decision-api/migrations/*.sql))

BINS := $(BUILD)/bin/decision-api $(BUILD)/bin/dev-kafka $(BUILD)/bin/stream-processor $(BUILD)/bin/decision-archiver \
        $(BUILD)/bin/decision-replay $(BUILD)/bin/variable-store $(BUILD)/bin/decision-schemas
UNIT_TESTS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
INTEG_TESTS := $(patsubst tests/integration/%.c,$(BUILD)/tests/%,$(wildcard tests/integration/test_*.c))
# The real-broker tier (tests/broker): Apache Kafka clusters started by
# deploy/kafka-cluster.sh. It runs in the normal build only: the brokers are
# Java, the programs under test are the same code the ASan pass already runs
# against dev-kafka, and both passes together would not fit make test's
# 15 minutes. (CHECK_TESTS is expanded late: FUZZ_TESTS is set further down.)
BROKER_TESTS := $(patsubst tests/broker/%.c,$(BUILD)/tests/%,$(wildcard tests/broker/test_*.c))
CHECK_TESTS = $(UNIT_TESTS) $(INTEG_TESTS) $(FUZZ_TESTS) $(if $(filter 1,$(SAN)),,$(BROKER_TESTS))

.PHONY: all deps run test check check-broker bench fuzz fuzz-seeds clean
all: $(BINS)

deps:
	@bash deploy/install-deps.sh

# Objects also depend on the librdkafka they are compiled for (rdkafka.pc),
# so a tree built against another one is rebuilt, not linked mixed.
$(BUILD)/obj/%.o: %.c $(RDKAFKA_PCFILE)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(EMBED_C): tools/embed.sh $(SCHEMA_DATA)
	@mkdir -p $(dir $@)
	bash tools/embed.sh $@ dsEmbeddedSchemas $(SCHEMA_DATA)

$(FIXTURE_C): tools/embed.sh $(FIXTURE_DATA)
	@mkdir -p $(dir $@)
	bash tools/embed.sh $@ dtFixtureSchemas $(FIXTURE_DATA)

$(MIGR_C): tools/embed.sh $(MIGRATIONS)
	@mkdir -p $(dir $@)
	bash tools/embed.sh $@ apiMigrations $(MIGRATIONS)

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(LIBDS): $(call obj,$(LIB_SRCS))
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(LIBSCHEMA): $(call obj,$(SCHEMA_SRCS)) $(BUILD)/obj/gen/schemas_embedded.o
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(LIBSP): $(call obj,$(SP_SRCS))
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(LIBRP): $(call obj,$(RP_SRCS))
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(LIBVS): $(call obj,$(VS_SRCS))
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

# The test support library builds test archives with the archiver's own module.
$(call obj,$(TSUP_SRCS)): CFLAGS += -Ireplay/src

$(LIBTSUP): $(call obj,$(TSUP_SRCS))
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(BUILD)/bin/decision-api: $(call obj,$(API_SRCS)) $(BUILD)/obj/gen/migrations_embedded.o $(LIBSCHEMA) $(LIBDS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/stream-processor: $(call obj,stream-processor/src/main.c) $(LIBSP) $(LIBSCHEMA) $(LIBDS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/decision-archiver: $(call obj,replay/src/archiver_main.c) $(LIBRP) $(LIBSCHEMA) $(LIBDS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/decision-replay: $(call obj,replay/src/replay_main.c) $(LIBRP) $(LIBSCHEMA) $(LIBDS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/variable-store: $(call obj,variable-store/src/main.c) $(LIBVS) $(LIBSCHEMA) $(LIBDS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The schema tool reads the schema directory, not the embedded copy.
$(BUILD)/bin/decision-schemas: $(call obj,schemas/tool/decision_schemas.c) $(LIBSCHEMA) $(LIBDS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/dev-kafka: $(call obj,$(DEVKAFKA_SRCS)) $(LIBDS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Unit tests link the libraries, the fixture schema set
# (tests/support/fixture_schemas.h) and the test support library (for its
# stand-in HTTP server, fakehttp.h); integration tests also use its harness.
define link_test
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -Itests/support -Istream-processor/src -Ireplay/src -Ivariable-store/src -o $@ $< $(FIXTURE_O) $(LIBTSUP) \
	  $(PROGLIBS) $(LIBSCHEMA) $(LIBDS) $(LDLIBS) -lcmocka
endef

$(BUILD)/tests/test_%: tests/unit/test_%.c $(FIXTURE_O) $(LIBTSUP) $(PROGLIBS) $(LIBSCHEMA) $(LIBDS)
	$(link_test)

$(BUILD)/tests/test_%: tests/integration/test_%.c $(FIXTURE_O) $(LIBTSUP) $(PROGLIBS) $(LIBSCHEMA) $(LIBDS)
	$(link_test)

$(BUILD)/tests/test_%: tests/broker/test_%.c $(FIXTURE_O) $(LIBTSUP) $(PROGLIBS) $(LIBSCHEMA) $(LIBDS)
	$(link_test)

# test_compat runs the schema tool.
$(BUILD)/tests/test_compat: $(BUILD)/bin/decision-schemas

# Benchmark tools (bench/tools/*.c) build test archives with the test support library.
$(BUILD)/bench/bench-gen: bench/tools/bench_gen.c $(LIBTSUP) $(LIBRP) $(LIBSCHEMA) $(LIBDS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -Itests/support -Ireplay/src -o $@ $^ $(LDLIBS)

# ---- fuzzing (tests/fuzz; README "Fuzzing") ----
# Each tests/fuzz/fuzz_<target>.c is built twice: as $(BUILD)/tests/fuzz_<target>
# with the normal compiler and tests/fuzz/driver.c, a test that replays the
# target's seed corpus and regression inputs once each (make test); and as
# build/fuzz/bin/fuzz_<target> with clang and libFuzzer (make fuzz).
FUZZ_SRCS    := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_TESTS   := $(patsubst tests/fuzz/fuzz_%.c,$(BUILD)/tests/fuzz_%,$(FUZZ_SRCS))
FUZZ_TARGETS ?= $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRCS))
FUZZ_SECONDS ?= 60
FUZZ_INC     := -Itests/fuzz -Idecision-api/src -Istream-processor/src -Ireplay/src
# The API's modules other than main.c, for the search harness, which compiles
# the search handler's file itself (its parser is static).
LIBAPI       := $(BUILD)/lib/libapi.a
FUZZ_LIBS    := $(LIBAPI) $(PROGLIBS) $(LIBSCHEMA) $(LIBDS)

$(LIBAPI): $(call obj,$(filter-out decision-api/src/main.c decision-api/src/handlers_read.c,$(API_SRCS))) \
           $(BUILD)/obj/gen/migrations_embedded.o
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(BUILD)/tests/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(BUILD)/obj/tests/fuzz/driver.o $(FUZZ_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $(FUZZ_INC) -o $@ $< $(BUILD)/obj/tests/fuzz/driver.o $(FUZZ_LIBS) $(LDLIBS)

$(BUILD)/bin/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -fsanitize=fuzzer $(FUZZ_INC) -o $@ $< $(FUZZ_LIBS) $(LDLIBS)

$(BUILD)/tests/fuzz_search $(BUILD)/bin/fuzz_search: decision-api/src/handlers_read.c

# The binary seeds (wire records, archive files, pgoutput streams), written
# again only when the schemas, the archive format or the fixtures change.
$(BUILD)/tests/fuzz-seeds: tests/fuzz/seeds.c tests/fuzz/fuzz.h $(LIBTSUP) $(LIBAPI) $(LIBRP) $(LIBSCHEMA) $(LIBDS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -Itests/support $(FUZZ_INC) -o $@ $< $(LIBTSUP) $(LIBAPI) $(LIBRP) $(LIBSCHEMA) $(LIBDS) \
	  $(LDLIBS)

fuzz-seeds: $(BUILD)/tests/fuzz-seeds
	$(BUILD)/tests/fuzz-seeds

# clang and libFuzzer are installed here only: make test does not need them.
fuzz:
	@bash deploy/install-deps.sh --fuzz
	$(MAKE) BUILD=build/fuzz CC=clang FUZZ=1 $(patsubst %,build/fuzz/bin/fuzz_%,$(FUZZ_TARGETS))
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash tests/fuzz/run.sh $(FUZZ_TARGETS)

check: all $(CHECK_TESTS)
	BUILD=$(BUILD) bash tests/run.sh $(CHECK_TESTS)

# The real-broker tier alone.
check-broker: all $(BROKER_TESTS)
	BUILD=$(BUILD) bash tests/run.sh $(BROKER_TESTS)

# Each pass builds with TEST_JOBS jobs (both cores of CI's machine), then
# runs its tests one after another: tests/run.sh is a single recipe, which
# starts only once every binary is built, and the tests are timing-sensitive.
TEST_JOBS ?= 2
test: deps
	$(MAKE) -j$(TEST_JOBS) check
	$(MAKE) -j$(TEST_JOBS) BUILD=build/asan SAN=1 check

# KAFKA=dev (dev-kafka, the default) or KAFKA=apache (a local Apache Kafka).
KAFKA ?= dev
run: deps all
	KAFKA=$(KAFKA) bash deploy/run.sh

bench: deps all $(BUILD)/bench/bench-gen
	bash bench/run.sh

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
