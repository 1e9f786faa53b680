# civibus — build, run, test.
#
#   make            builds bin/civibus-hub and bin/civibus-adapter
#   make run        installs missing Debian packages (as root), starts a throwaway
#                   PostgreSQL under ./var, the hub and the demo adapters
#   make stop       stops what `make run` started
#   make test       unit + integration + crash tests, then the same under ASan+UBSan
#   make valgrind   unit tests under valgrind
#   make chaos      the long crash test (10 kills, 1,000,000 events)
#   make bench      ingest benchmark against the PostgreSQL ceiling (docs/performance.md)
#   make fresh-check  proves `make run` and `make test` on a bare Debian 12 root (tests/fresh/)
#
# The targets that install packages (run, test, unit, valgrind, chaos, bench, deps) do so
# first and then build through a fresh $(MAKE), whose flags are computed once the libraries
# are there. Every other goal checks the libraries before anything (deploy/deps.sh check)
# and names the missing Debian package instead of failing at the link.
# SAN=1 builds into build-san/ with AddressSanitizer and UndefinedBehaviorSanitizer.

CC      ?= cc
# Goals that install or only run things: they compute no flags themselves.
NOBUILD_GOALS := deps run stop test test-ready unit valgrind chaos bench clean fresh-check
BUILD_GOALS   := $(filter-out $(NOBUILD_GOALS),$(or $(MAKECMDGOALS),all))
ifneq ($(BUILD_GOALS),)
ifneq ($(shell bash deploy/deps.sh check $(if $(filter tests-bin %/tests/% %/tools/%,$(BUILD_GOALS)),test,build) >&2 || echo missing),)
$(error a library is missing (above): nothing was built)
endif
endif
PKGS    := $(filter-out jemalloc,$(shell bash deploy/deps.sh modules))
WARN    := -std=c11 -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
# Include paths: lib/ for everyone; each program its own folder, so that a hub file names
# the stage it uses ("store/cv_store.h"). A header used only inside its folder is found
# next to its includer and is on nobody's path (a driver's private header stays private).
CFLAGS_BASE := $(WARN) -D_GNU_SOURCE -g -MMD -MP -Ilib \
               $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -I$(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpq -lpthread -lm
# The hub allocates and frees a JSON tree per event (jansson): jemalloc instead of glibc's
# malloc takes a third off its CPU per event (docs/performance.md). Not under the
# sanitizers, which bring their own allocator.
HUB_MALLOC := -ljemalloc

ifeq ($(SAN),1)
BUILD   := build-san
CFLAGS  := $(CFLAGS_BASE) -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS := -fsanitize=address,undefined
BIN     := $(BUILD)/bin
HUB_MALLOC :=
else
BUILD   := build
CFLAGS  := $(CFLAGS_BASE) -O2
LDFLAGS :=
BIN     := bin
endif

# Every .c of a program's folders (hub/ and adapters/ have a folder per stage or driver).
LIB_SRC     := $(wildcard lib/*.c)
HUB_SRC     := $(filter-out hub/main.c,$(sort $(shell find hub -name '*.c')))
RUNTIME_SRC := $(filter-out adapters/civibus_adapter.c,$(sort $(shell find adapters -name '*.c')))
API_SRC     := $(filter-out api/main.c api/civibusctl.c,$(wildcard api/*.c))
TEST_SRC    := $(sort $(shell find tests/unit -name 'test_*.c'))

LIB_OBJ     := $(LIB_SRC:%.c=$(BUILD)/%.o)
HUB_OBJ     := $(HUB_SRC:%.c=$(BUILD)/%.o)
RUNTIME_OBJ := $(RUNTIME_SRC:%.c=$(BUILD)/%.o)
API_OBJ     := $(API_SRC:%.c=$(BUILD)/%.o)
API_BINS    := $(if $(wildcard api/main.c),$(BIN)/civibus-api) $(if $(wildcard api/civibusctl.c),$(BIN)/civibusctl)
# tests/unit/{lib,hub,adapters,api}/test_X.c -> $(BUILD)/tests/test_X
TEST_BIN    := $(addprefix $(BUILD)/tests/,$(notdir $(TEST_SRC:.c=)))
vpath test_%.c $(sort $(dir $(TEST_SRC)))
# Tests and tools reach any program's headers, by their path from the program's folder.
TEST_CFLAGS  = $(CFLAGS) -Itests/unit -Ihub -Iadapters -Iapi
TOOL_SRC    := $(wildcard tests/tools/*.c)
TOOL_BIN    := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)

.PHONY: all deps run stop test test-ready unit valgrind chaos clean bench fresh-check
all: $(BIN)/civibus-hub $(BIN)/civibus-adapter $(API_BINS)

$(BUILD)/libcivibus.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	ar rcs $@ $^

$(BIN)/civibus-hub: $(BUILD)/hub/main.o $(HUB_OBJ) $(BUILD)/libcivibus.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(HUB_MALLOC)

$(BIN)/civibus-adapter: $(BUILD)/adapters/civibus_adapter.o $(RUNTIME_OBJ) $(BUILD)/libcivibus.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/civibus-api: $(BUILD)/api/main.o $(API_OBJ) $(BUILD)/libcivibus.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/civibusctl: $(BUILD)/api/civibusctl.o $(API_OBJ) $(BUILD)/libcivibus.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/test_%: test_%.c $(HUB_OBJ) $(RUNTIME_OBJ) $(API_OBJ) $(BUILD)/libcivibus.a
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) $(LDFLAGS) -MF $@.d -o $@ $< $(HUB_OBJ) $(RUNTIME_OBJ) $(API_OBJ) $(BUILD)/libcivibus.a $(LDLIBS) -lcmocka

$(BUILD)/tools/%: tests/tools/%.c $(HUB_OBJ) $(RUNTIME_OBJ) $(API_OBJ) $(BUILD)/libcivibus.a
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) $(LDFLAGS) -MF $@.d -o $@ $< $(HUB_OBJ) $(RUNTIME_OBJ) $(API_OBJ) $(BUILD)/libcivibus.a $(LDLIBS)

# hub/... gets -Ihub, adapters/... -Iadapters, api/... -Iapi, lib/... nothing more.
INC_hub      := -Ihub
INC_adapters := -Iadapters
INC_api      := -Iapi
$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	@$(CC) $(CFLAGS) $(INC_$(firstword $(subst /, ,$<))) -c -o $@ $<

# header dependencies, written by the compiler (-MMD)
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

tests-bin: $(TEST_BIN) $(TOOL_BIN)
.PHONY: tests-bin

deps:
	@bash deploy/deps.sh

# Installs, then builds in a fresh make: this one's flags were computed before the
# libraries were there.
run: deps
	@$(MAKE) --no-print-directory all
	@bash deploy/run.sh

stop:
	@bash deploy/run.sh stop

test:
	@bash deploy/deps.sh test
	@bash tests/run.sh

# Installs the test packages, then builds: on a fresh machine the build of
# the test binaries itself needs them (cmocka).
test-ready:
	@bash deploy/deps.sh test
	@$(MAKE) --no-print-directory all tests-bin

unit: test-ready
	@bash tests/run.sh unit

valgrind: test-ready
	@bash tests/run.sh valgrind

chaos: test-ready
	@CHAOS=long bash tests/run.sh chaos

bench: test-ready
	@bash tests/bench/run.sh

# A bare Debian 12 root (debootstrap) runs `make run`, `make stop`, then `make test`.
fresh-check:
	@bash tests/fresh/run.sh

clean:
	rm -rf build build-san bin
