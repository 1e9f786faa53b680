# civibus — build, run, test.
#
#   make            builds bin/civibus-hub, bin/civibus-adapter, the API and bin/civibus-notify
#   make run        installs missing Debian packages (as root), starts a throwaway
#                   PostgreSQL under ./var, the hub and the demo adapters
#   make stop       stops what `make run` started
#   make test       unit + integration + crash tests, then the same under ASan+UBSan
#   make valgrind   unit tests under valgrind
#   make chaos      the long crash test (10 kills, 1,000,000 events)
#   make bench      ingest benchmark against the PostgreSQL ceiling (docs/performance.md)
#   make fresh-check  proves `make run` and `make test` on a bare Debian 12 root (tests/fresh/)
#   make fuzz       every libFuzzer harness of tests/fuzz/ for FUZZ_SECONDS (30) under ASan+UBSan
#   make fuzz-long  the same, 1,000,000 executions per harness (FUZZ_RUNS)
#   make install    the programs, data, config examples and systemd units under PREFIX
#                   (/usr/local), SYSCONFDIR (/etc), DESTDIR; then civibus-setup as root
#   make deb        dist/civibus_VERSION_ARCH.deb (dpkg-deb; docs/operations.md "Install")
#
# The targets that install packages (run, test, unit, valgrind, chaos, bench, deps, fuzz,
# fuzz-long) do so first and then build through a fresh $(MAKE), whose flags are computed
# once the libraries are there. Every other goal checks the libraries before anything (deploy/deps.sh check)
# and names the missing Debian package instead of failing at the link.
# SAN=1 builds into build-san/ with AddressSanitizer and UndefinedBehaviorSanitizer.

CC      ?= cc
# Goals that install or only run things: they compute no flags themselves.
NOBUILD_GOALS := deps run stop test test-ready unit valgrind chaos bench clean fresh-check fuzz fuzz-long
BUILD_GOALS   := $(filter-out $(NOBUILD_GOALS),$(or $(MAKECMDGOALS),all))
ifneq ($(BUILD_GOALS),)
ifneq ($(shell bash deploy/deps.sh check $(if $(filter fuzz-bin build-fuzz/%,$(BUILD_GOALS)),fuzz,$(if $(filter tests-bin %/tests/% %/tools/%,$(BUILD_GOALS)),test,build)) >&2 || echo missing),)
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
API_SRC     := $(filter-out api/main.c api/civibusctl.c api/ctl_%.c,$(wildcard api/*.c))
# civibusctl's dead-letters and remap (api/ctl_*.c) reuse the hub's mapping and store.
CTL_SRC     := $(wildcard api/ctl_*.c)
NOTIFY_SRC  := $(filter-out notify/main.c,$(wildcard notify/*.c))
TEST_SRC    := $(sort $(shell find tests/unit -name 'test_*.c'))

LIB_OBJ     := $(LIB_SRC:%.c=$(BUILD)/%.o)
HUB_OBJ     := $(HUB_SRC:%.c=$(BUILD)/%.o)
RUNTIME_OBJ := $(RUNTIME_SRC:%.c=$(BUILD)/%.o)
API_OBJ     := $(API_SRC:%.c=$(BUILD)/%.o)
CTL_OBJ     := $(CTL_SRC:%.c=$(BUILD)/%.o)
NOTIFY_OBJ  := $(NOTIFY_SRC:%.c=$(BUILD)/%.o)
# ... that is, these hub folders (the store records command results and keeps the identity cache).
CTL_HUB_OBJ := $(filter $(addprefix $(BUILD)/hub/,map/% store/% identity/% commands/% cv_hub_config.o),$(HUB_OBJ))
API_BINS    := $(if $(wildcard api/main.c),$(BIN)/civibus-api) $(if $(wildcard api/civibusctl.c),$(BIN)/civibusctl)
# tests/unit/{lib,hub,adapters,api}/test_X.c -> $(BUILD)/tests/test_X
TEST_BIN    := $(addprefix $(BUILD)/tests/,$(notdir $(TEST_SRC:.c=)))
vpath test_%.c $(sort $(dir $(TEST_SRC)))
# Tests and tools reach any program's headers, by their path from the program's folder.
TEST_CFLAGS  = $(CFLAGS) -Itests/unit -Ihub -Iadapters -Iapi -Inotify
TOOL_SRC    := $(wildcard tests/tools/*.c)
TOOL_BIN    := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)

.PHONY: all deps run stop test test-ready unit valgrind chaos clean bench fresh-check fuzz fuzz-long fuzz-bin install deb
all: $(BIN)/civibus-hub $(BIN)/civibus-adapter $(API_BINS) $(BIN)/civibus-notify

$(BUILD)/libcivibus.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	ar rcs $@ $^

# The hub's --try-mapping (hub/trymap) reads sample exports with the file-drop driver's
# parsers and the adapter config loader: the adapters' objects, as an archive, so that
# only what it uses is linked in (no client, spool or other driver).
$(BUILD)/libcvadapters.a: $(RUNTIME_OBJ)
	@mkdir -p $(dir $@)
	ar rcs $@ $^

$(BIN)/civibus-hub: $(BUILD)/hub/main.o $(HUB_OBJ) $(BUILD)/libcvadapters.a $(BUILD)/libcivibus.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(HUB_MALLOC)

$(BIN)/civibus-adapter: $(BUILD)/adapters/civibus_adapter.o $(RUNTIME_OBJ) $(BUILD)/libcivibus.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/civibus-api: $(BUILD)/api/main.o $(API_OBJ) $(BUILD)/libcivibus.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/civibusctl: $(BUILD)/api/civibusctl.o $(CTL_OBJ) $(API_OBJ) $(CTL_HUB_OBJ) $(BUILD)/libcivibus.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/civibus-notify: $(BUILD)/notify/main.o $(NOTIFY_OBJ) $(BUILD)/libcivibus.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# api/ctl_*.c and civibusctl.c name hub headers by their path from hub/ ("map/cv_mapping.h").
$(CTL_OBJ) $(BUILD)/api/civibusctl.o: CFLAGS += -Ihub

$(BUILD)/tests/test_%: test_%.c $(HUB_OBJ) $(RUNTIME_OBJ) $(API_OBJ) $(NOTIFY_OBJ) $(BUILD)/libcivibus.a
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) $(LDFLAGS) -MF $@.d -o $@ $< $(HUB_OBJ) $(RUNTIME_OBJ) $(API_OBJ) $(NOTIFY_OBJ) $(BUILD)/libcivibus.a $(LDLIBS) -lcmocka

$(BUILD)/tools/%: tests/tools/%.c $(HUB_OBJ) $(RUNTIME_OBJ) $(API_OBJ) $(BUILD)/libcivibus.a
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) $(LDFLAGS) -MF $@.d -o $@ $< $(HUB_OBJ) $(RUNTIME_OBJ) $(API_OBJ) $(BUILD)/libcivibus.a $(LDLIBS)

# hub/... gets -Ihub, adapters/... -Iadapters, api/... -Iapi, lib/... nothing more.
INC_hub      := -Ihub
INC_adapters := -Iadapters
INC_api      := -Iapi
INC_notify   := -Inotify
# hub/trymap names the adapters' headers it reuses ("drivers/filedrop/cv_filedrop_csv.h").
$(BUILD)/hub/trymap/%.o: INC_hub += -Iadapters
$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	@$(CC) $(CFLAGS) $(INC_$(firstword $(subst /, ,$<))) -c -o $@ $<

# header dependencies, written by the compiler (-MMD)
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# Fuzzing (tests/fuzz/README.md): the product's own sources, compiled again by Debian's
# clang into build-fuzz/ with libFuzzer's coverage and ASan+UBSan; one binary per harness,
# tests/fuzz/<target>/fuzz_<target>.c -> build-fuzz/fuzz/<target>.
FUZZ_BUILD  := build-fuzz
FUZZ_CC     := clang-14
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := $(CFLAGS_BASE) -O1 -fno-omit-frame-pointer $(FUZZ_SAN)
# notify/'s one fuzzed file (cv_template.c) is compiled into its harness, which reads its internals
FUZZ_OBJ    := $(patsubst %.c,$(FUZZ_BUILD)/%.o,$(LIB_SRC) $(HUB_SRC) $(RUNTIME_SRC) $(API_SRC))
FUZZ_SRC    := $(sort $(wildcard tests/fuzz/*/fuzz_*.c))
FUZZ_BIN    := $(patsubst tests/fuzz/%/,$(FUZZ_BUILD)/fuzz/%,$(dir $(FUZZ_SRC)))
FUZZ_SECONDS ?= 30
FUZZ_RUNS    ?= 1000000

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  FUZZ-CC $<"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(INC_$(firstword $(subst /, ,$<))) -c -o $@ $<
$(FUZZ_BUILD)/hub/trymap/%.o: INC_hub += -Iadapters

define FUZZ_LINK
$(FUZZ_BUILD)/fuzz/$(1): tests/fuzz/$(1)/fuzz_$(1).c $(FUZZ_OBJ)
	@mkdir -p $$(dir $$@)
	@echo "  FUZZ-LD $$@"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -DFUZZ_ROOT='"$(CURDIR)"' -Itests/fuzz -Ihub -Iadapters -Iapi -Inotify -MF $$@.d -o $$@ $$< \
	    $(FUZZ_OBJ) $(LDLIBS)
endef
$(foreach t,$(notdir $(FUZZ_BIN)),$(eval $(call FUZZ_LINK,$(t))))

fuzz-bin: $(FUZZ_BIN)

-include $(shell find $(FUZZ_BUILD) -name '*.d' 2>/dev/null)

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

# Installs clang and the libFuzzer runtime, builds, then runs each harness for FUZZ_SECONDS
# (fuzz) or FUZZ_RUNS executions (fuzz-long), after replaying its regressions and corpus.
fuzz:
	@bash deploy/deps.sh fuzz
	@$(MAKE) --no-print-directory fuzz-bin
	@FUZZ_SECONDS=$(FUZZ_SECONDS) bash tests/fuzz/run.sh time

fuzz-long:
	@bash deploy/deps.sh fuzz
	@$(MAKE) --no-print-directory fuzz-bin
	@FUZZ_RUNS=$(FUZZ_RUNS) bash tests/fuzz/run.sh runs

clean:
	rm -rf build build-san build-fuzz bin

# ---------------------------------------------------------------------------------------
# Installation (docs/operations.md, "Install"). The programs go to $(BINDIR) (daemons too:
# systemd starts them by path, Debian allows /usr/bin), read-only data to $(DATADIR), the
# configuration examples to $(SYSCONFDIR)/civibus (production defaults: no source, loopback
# only; an existing file is never overwritten), the units to $(UNITDIR). The paths inside
# the installed files are rewritten for these folders. The users and /var/lib/civibus are
# made by $(DATADIR)/civibus-setup (the package's postinst runs it), not here. The
# folders are set on the command line (make install PREFIX=/usr SYSCONFDIR=/etc ...); only
# PREFIX is also read from the environment (the tests export a BINDIR of their own).
PREFIX     ?= /usr/local
BINDIR      = $(PREFIX)/bin
DATADIR     = $(PREFIX)/share/civibus
DOCDIR      = $(PREFIX)/share/doc/civibus
UNITDIR     = $(PREFIX)/lib/systemd/system
SYSCONFDIR  = /etc
STATEDIR    = /var/lib/civibus
VERSION    := $(shell cat VERSION 2>/dev/null || git describe --tags --always 2>/dev/null || echo 0)
INSTALL_BINS := civibus-hub civibus-adapter civibus-api civibusctl civibus-notify
# the softwares' adapters shipped as examples: each folder of adapters/ with an adapter.yaml
INSTALL_ADAPTERS := $(patsubst adapters/%/adapter.yaml,%,$(wildcard adapters/*/adapter.yaml))
INSTALL_PATHS := s|/usr/share/civibus|$(DATADIR)|g; s|/usr/share/doc/civibus|$(DOCDIR)|g; \
                 s|/var/lib/civibus|$(STATEDIR)|g; s|/etc/civibus|$(SYSCONFDIR)/civibus|g; s|/usr/bin/|$(BINDIR)/|g
# an adapter's demo paths (../../var/...) -> its state under $(STATEDIR)/adapter
ADAPTER_PATHS := s|\.\./\.\./var/keys/hub|$(STATEDIR)/keys/hub|; s|\.\./\.\./var/keys/|$(STATEDIR)/adapter/keys/|; \
                 s|\.\./\.\./var/spool/|$(STATEDIR)/adapter/spool/|; s|\.\./\.\./var/exports/|$(STATEDIR)/adapter/inbox/|; \
                 s|\.\./\.\./var/attachments|$(STATEDIR)/attachments|; s|\.\./\.\./var/secrets/|$(SYSCONFDIR)/civibus/secrets/|; \
                 s| (tests/sim/[^)]*)||
ETC := $(DESTDIR)$(SYSCONFDIR)/civibus

install: all
	install -d -m 0755 $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR) $(DESTDIR)$(DOCDIR) $(DESTDIR)$(UNITDIR) \
	    $(ETC) $(ETC)/adapters $(DESTDIR)$(DATADIR)/notify $(DESTDIR)$(DATADIR)/adapters
	install -m 0755 $(addprefix $(BIN)/,$(INSTALL_BINS)) $(DESTDIR)$(BINDIR)/
	sed 's|^STATE=.*|STATE=$${CIVIBUS_STATE:-$(STATEDIR)}|; s|^BINDIR=.*|BINDIR=$${CIVIBUS_BINDIR:-$(BINDIR)}|' \
	    deploy/debian/civibus-setup >$(DESTDIR)$(DATADIR)/civibus-setup
	chmod 0755 $(DESTDIR)$(DATADIR)/civibus-setup
	rm -rf $(DESTDIR)$(DATADIR)/schemas $(DESTDIR)$(DATADIR)/web $(DESTDIR)$(DATADIR)/notify/templates
	cp -R --no-preserve=mode,ownership schemas web $(DESTDIR)$(DATADIR)/
	cp -R --no-preserve=mode,ownership deploy/notify/templates $(DESTDIR)$(DATADIR)/notify/
	install -d -m 0755 $(DESTDIR)$(DATADIR)/sql && install -m 0644 deploy/sql/roles.sql $(DESTDIR)$(DATADIR)/sql/
	for a in $(INSTALL_ADAPTERS); do \
	    install -d -m 0755 $(DESTDIR)$(DATADIR)/adapters/$$a && \
	    install -m 0644 adapters/$$a/mapping.yaml $(DESTDIR)$(DATADIR)/adapters/$$a/ || exit 1; \
	done
	find $(DESTDIR)$(DATADIR) -type d -exec chmod 0755 {} + && find $(DESTDIR)$(DATADIR) -type f ! -name civibus-setup -exec chmod 0644 {} +
	for f in deploy/etc/civibus.yaml deploy/etc/api.yaml deploy/etc/notify.yaml deploy/routing.yaml \
	         deploy/deadlines.yaml deploy/retention.yaml deploy/costs.yaml; do \
	    t=$(ETC)/$$(basename $$f); [ -e $$t ] && { echo "  kept $$t"; continue; }; \
	    sed '$(INSTALL_PATHS)' $$f >$$t && chmod 0644 $$t || exit 1; \
	done
	for a in $(INSTALL_ADAPTERS); do \
	    t=$(ETC)/adapters/$$a.yaml; [ -e $$t ] && { echo "  kept $$t"; continue; }; \
	    { echo "# $(SYSCONFDIR)/civibus/adapters/$$a.yaml — run by the unit civibus-adapter@$$a (installed disabled)."; \
	      echo "# An example, as shipped with civibus: set the software's address and secrets first."; \
	      sed '$(ADAPTER_PATHS)' adapters/$$a/adapter.yaml; } >$$t && chmod 0644 $$t || exit 1; \
	done
	for u in deploy/systemd/*.service; do sed '$(INSTALL_PATHS)' $$u >$(DESTDIR)$(UNITDIR)/$$(basename $$u) || exit 1; \
	    chmod 0644 $(DESTDIR)$(UNITDIR)/$$(basename $$u); done
	install -m 0644 docs/*.md docs/openapi.yaml $(DESTDIR)$(DOCDIR)/
	install -m 0644 deploy/civibus.yaml $(DESTDIR)$(DOCDIR)/civibus.yaml.example
	@echo "installed civibus $(VERSION) under $(DESTDIR)$(PREFIX); as root, run $(DATADIR)/civibus-setup (users, $(STATEDIR))"

# The Debian package, from the tree: a staged `make install` for /usr, stripped, with
# deploy/debian/'s control and maintainer scripts; Depends computed by dpkg-shlibdeps
# from the binaries (a fixed list where dpkg-dev is missing). DEB_FILE and DEB_STAGE may
# be given on the command line (tests/it/install.sh builds into its own folder).
DEB_ARCH  := $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
DEB_STAGE := build/deb
DEB_ROOT  := $(DEB_STAGE)/root
DEB_FILE  := dist/civibus_$(VERSION)_$(DEB_ARCH).deb
DEB_DEPENDS_FALLBACK := libc6 (>= 2.34), libczmq4 (>= 4.2.0), libzmq5 (>= 4.3.4), libjansson4 (>= 2.14), \
    libyaml-0-2, libpq5 (>= 15), libsodium23, libcurl4 (>= 7.88), libmicrohttpd12, libexpat1 (>= 2.5), libjemalloc2

deb: all
	rm -rf $(DEB_STAGE) && mkdir -p $(DEB_ROOT)/DEBIAN $(dir $(DEB_FILE))
	$(MAKE) --no-print-directory install DESTDIR=$(abspath $(DEB_ROOT)) PREFIX=/usr SYSCONFDIR=/etc \
	    STATEDIR=/var/lib/civibus UNITDIR=/lib/systemd/system >/dev/null
	strip --strip-unneeded $(addprefix $(DEB_ROOT)/usr/bin/,$(INSTALL_BINS))
	printf 'civibus (%s) unstable; urgency=medium\n\n  * Built from the tree (%s).\n\n -- civibus <civibus@localhost>  %s\n' \
	    '$(VERSION)' "$$(git rev-parse --short HEAD 2>/dev/null || echo no git)" "$$(date -R)" \
	    | gzip -9n >$(DEB_ROOT)/usr/share/doc/civibus/changelog.Debian.gz
	install -m 0644 deploy/debian/copyright $(DEB_ROOT)/usr/share/doc/civibus/copyright
	install -m 0755 deploy/debian/postinst deploy/debian/prerm deploy/debian/postrm $(DEB_ROOT)/DEBIAN/
	cd $(DEB_ROOT) && find etc -type f | sort | sed 's|^|/|' >DEBIAN/conffiles
	cd $(DEB_ROOT) && find usr lib -type f -exec md5sum {} + | sort -k2 >DEBIAN/md5sums
	deps=$$(cd $(DEB_STAGE) && mkdir -p debian && printf 'Source: civibus\n\nPackage: civibus\nArchitecture: any\n' >debian/control && \
	        dpkg-shlibdeps -O $(addprefix root/usr/bin/,$(INSTALL_BINS)) 2>/dev/null | sed -n 's/^shlibs:Depends=//p'); \
	[ -n "$$deps" ] || deps='$(DEB_DEPENDS_FALLBACK)'; \
	sed "s|@VERSION@|$(VERSION)|; s|@ARCH@|$(DEB_ARCH)|; s|@DEPENDS@|$$deps|; \
	     s|@SIZE@|$$(du -sk --exclude=DEBIAN $(DEB_ROOT) | cut -f1)|" deploy/debian/control.in >$(DEB_ROOT)/DEBIAN/control
	dpkg-deb --root-owner-group -Zxz --build $(DEB_ROOT) $(DEB_FILE) >/dev/null
	@echo "built $(DEB_FILE)"
