# crmgate - one plain GNU Makefile (see STYLE.md).
#
#   make            build ./crmgate
#   make run        install what is missing, build, start on the embedded default
#   make test       install what is missing, build, run every test
#   make asan       build ./crmgate-asan (ASan + UBSan) and run the suite with it
#   make bench      crmgate vs nginx vs direct, side by side (tests/bench/)
#   make demo       the fake CRM, crmgate and a scripted agent; then crmgate diffs
#   make install    PREFIX=/usr DESTDIR=... binary, unit, sysusers, tmpfiles, rules

SHELL      := bash
VERSION    := 0.1.0
PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
DATADIR    ?= $(PREFIX)/share/crmgate
DOCDIR     ?= $(PREFIX)/share/doc/crmgate
CONFDIR    ?= /etc/crmgate

CC         ?= cc
PKGS       := libevent libevent_openssl libevent_pthreads libcurl jansson openssl lmdb zlib
LLHTTP_DIR := /usr/share/llhttp
LLHTTP_INC := /usr/share/include/llhttp

WARN       := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Werror
OPT        ?= -O2 -g
CPPFLAGS   += -D_GNU_SOURCE -DCRMGATE_VERSION='"$(VERSION)"' -I$(LLHTTP_INC) $(EXTRA_CPPFLAGS)
CFLAGS     += $(OPT) -std=c11 -pthread -fno-strict-aliasing
PKG_CFLAGS  = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS    = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
LDLIBS     += $(PKG_LIBS) -pthread -lm

B          ?= build
PROG       ?= crmgate

SRC_PROXY  := proxy/main.c proxy/config.c proxy/log.c proxy/server.c proxy/conn.c \
              proxy/http.c proxy/route.c proxy/exchange.c proxy/upstream.c proxy/sdnotify.c \
              proxy/rulesdir.c proxy/identify.c proxy/locators.c proxy/enforce.c proxy/cli_policy.c \
              proxy/tls.c proxy/store.c proxy/store_query.c proxy/store_overlay.c proxy/before.c proxy/audit.c proxy/audit_created.c \
              proxy/metrics.c proxy/query.c proxy/admin.c proxy/admin_api.c proxy/admin_client.c \
              proxy/cli_admin.c proxy/vault.c proxy/custody.c proxy/refresh.c proxy/admin_custody.c \
              proxy/cli_custody.c proxy/jsonalloc.c
SRC_POLICY := policy/crm.c policy/rules.c policy/decide.c policy/filter.c policy/jsonfilter.c \
              policy/soql.c policy/hubspot.c policy/salesforce.c policy/salesforce_schema.c \
              policy/diff.c policy/synthesize.c policy/jsonout.c
SRC_CERTS  := certs/ca.c certs/mint.c certs/cli_ca.c
SRC        := $(SRC_PROXY) $(SRC_POLICY) $(SRC_CERTS)
SRC_LLHTTP := $(LLHTTP_DIR)/llhttp.c $(LLHTTP_DIR)/api.c $(LLHTTP_DIR)/http.c

OBJ        := $(SRC:%.c=$(B)/%.o)
OBJ_LLHTTP := $(SRC_LLHTTP:$(LLHTTP_DIR)/%.c=$(B)/llhttp/%.o)

# node --test runs the e2e files two at a time where it can (Node >= 20.10); Debian 12's own
# Node 18 runs them one by one.
NODE_TEST  := node --test $(shell node -e 'const [a,b]=process.versions.node.split(".").map(Number); \
              if (a > 20 || (a === 20 && b >= 10)) console.log("--test-concurrency=2")' 2>/dev/null)

UNIT_TESTS := test_http test_route test_config test_crm test_sdnotify test_policy test_soql \
              test_classify_hubspot test_classify_salesforce test_jsonfilter test_certs test_synthesize \
              test_query test_metrics test_store_query test_store_overlay test_audit_created test_tls \
              test_vault test_jsonout test_audit test_jsonalloc test_store_full
UNIT_BINS  := $(UNIT_TESTS:%=$(B)/tests/unit/%)

.PHONY: all deps run demo test unit e2e systemd-check asan valgrind bench soak fuzz fuzz-seeds \
        soql-crosscheck certs-check install clean format format-check

all: $(PROG)

$(PROG): $(OBJ) $(OBJ_LLHTTP)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS) $(WARN) -MMD -MP -c -o $@ $<

# llhttp from Debian's node-llhttp: its own object group, strict mode, its warnings off.
$(B)/llhttp/%.o: $(LLHTTP_DIR)/%.c
	@mkdir -p $(dir $@)
	$(CC) -I$(LLHTTP_INC) -DLLHTTP_STRICT_MODE=1 $(CFLAGS) -w -c -o $@ $<

# Everything but main, as an archive: a unit test gets only the members it
# needs, so it may #include the .c under test to reach statics.
$(B)/libcrmgate.a: $(filter-out $(B)/proxy/main.o,$(OBJ)) $(OBJ_LLHTTP)
	rm -f $@
	ar rcs $@ $^

$(B)/tests/unit/%: tests/unit/%.c $(B)/libcrmgate.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) -Iproxy -Ipolicy -Icerts -Itests/unit $(CFLAGS) $(WARN) -Wno-missing-prototypes \
	    -MMD -MP -MF $@.d -o $@ $< $(B)/libcrmgate.a $(LDLIBS) -lcmocka

deps:
	@./scripts/deps.sh

run: deps all
	./$(PROG) serve

# The fake CRM and crmgate on free loopback ports, a scripted agent (both SDKs) in enforce mode
# and in dry-run, then crmgate diffs and stats; everything is stopped and removed afterwards.
demo: all
	@CRMGATE_BIN=$(abspath $(PROG)) bash tests/demo/run.sh

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

e2e: $(PROG)
	CRMGATE_BIN=$(abspath $(PROG)) $(NODE_TEST) tests/e2e/

systemd-check: $(PROG)
	@bash tests/systemd/check.sh

# The CA and leaves as openssl itself sees them (constraints, chain, a forged leaf refused).
certs-check: $(PROG)
	@CRMGATE_BIN=$(abspath $(PROG)) bash tests/certs/openssl_check.sh

test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory soql-crosscheck
	@$(MAKE) --no-print-directory fuzz-seeds
	@$(MAKE) --no-print-directory systemd-check
	@$(MAKE) --no-print-directory certs-check
	@$(MAKE) --no-print-directory e2e
	@$(MAKE) --no-print-directory soak SOAK_SECONDS=$(SOAK_SMOKE_SECONDS)

asan: deps
	@$(MAKE) --no-print-directory B=build-asan PROG=crmgate-asan \
	    OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all" \
	    LDFLAGS="-fsanitize=address,undefined" all unit e2e

# The e2e suite with crmgate under valgrind (slow: not part of make test).
valgrind: deps all
	CRMGATE_BIN=$(abspath tests/valgrind/crmgate) CRMGATE_SLOW=1 node --test tests/e2e/

# The bench also builds crmgate-passthrough (policy compiled out) to measure what enforcement
# costs, and the policy micro-benchmark (classify + decide + filter).
# libFuzzer targets for the pure parsers, the JSON parser and writer (differential against
# jansson) and the dry-run synthesizer (clang, ASan+UBSan), FUZZ_SECONDS each (default 600).
# New inputs go to build-fuzz/corpus/NAME; the committed seeds in tests/fuzz/corpus/NAME are read.
FUZZERS      := soql hubspot salesforce jsonfilter jsonparse jsonout synthesize
FUZZ_SECONDS ?= 600
FUZZ_CFLAGS  := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE

build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_util.h $(SRC_POLICY)
	@mkdir -p build-fuzz
	clang $(FUZZ_CFLAGS) -Ipolicy -o $@ $< $(SRC_POLICY) -ljansson

fuzz: deps $(FUZZERS:%=build-fuzz/fuzz_%)
	@set -e -o pipefail; for f in $(FUZZERS); do \
	    mkdir -p build-fuzz/corpus/$$f; \
	    dict=; [ -f tests/fuzz/$$f.dict ] && dict=-dict=tests/fuzz/$$f.dict; \
	    echo "== fuzz $$f for $(FUZZ_SECONDS)s"; \
	    build-fuzz/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $$dict \
	        build-fuzz/corpus/$$f tests/fuzz/corpus/$$f 2>&1 | tail -n 12; \
	done

# Every committed seed once through its fuzz target (invariants, ASan, UBSan): crashers found
# by make fuzz stay fixed.
fuzz-seeds: $(FUZZERS:%=build-fuzz/fuzz_%)
	@set -e; for f in $(FUZZERS); do \
	    build-fuzz/fuzz_$$f -runs=0 tests/fuzz/corpus/$$f 2>&1 | grep -E 'Done|ERROR|SUMMARY' || true; \
	    build-fuzz/fuzz_$$f -runs=0 tests/fuzz/corpus/$$f >/dev/null 2>&1; \
	done

# crmgate's SOQL parser against @jetstreamapp/soql-parser-js on the corpus (objects and fields).
soql-crosscheck: $(B)/tests/unit/soql_dump
	node tests/unit/soql_crosscheck.js $(B)/tests/unit/soql_dump tests/unit/cases/soql_corpus.txt

# mitmdump (the interception peer) and perf are installed here, not by make deps: make test
# does not need them.
bench: deps all $(B)/tests/bench/policy_bench $(B)/tests/bench/mint_bench $(B)/tests/bench/tunnel_load \
       $(B)/tests/bench/custody_bench
	@./scripts/deps.sh bench
	@$(MAKE) --no-print-directory B=build-bench PROG=build-bench/crmgate-passthrough \
	    EXTRA_CPPFLAGS=-DCRMGATE_BENCH_PASSTHROUGH build-bench/crmgate-passthrough
	@$(B)/tests/bench/policy_bench
	@$(B)/tests/bench/custody_bench
	@CRMGATE_BIN=$(abspath $(PROG)) CRMGATE_PASSTHROUGH_BIN=$(abspath build-bench/crmgate-passthrough) \
	    BENCH_DRIVER=$(abspath $(B)/tests/bench/tunnel_load) BENCH_MINT_BENCH=$(abspath $(B)/tests/bench/mint_bench) \
	    bash tests/bench/run.sh

# Long-run behaviour under mixed SDK load (tests/soak/soak.js): every call checked, the audit log
# reconciled with what the fake CRM received, crmgate's memory, descriptors and threads held
# steady. SOAK_SECONDS (600) sets the length; loopback only, in its own namespace as root.
SOAK_SECONDS ?= 600
# make test runs the same checks for SOAK_SMOKE_SECONDS.
SOAK_SMOKE_SECONDS ?= 45
soak: deps all
	@CRMGATE_BIN=$(abspath $(PROG)) SOAK_SECONDS=$(SOAK_SECONDS) bash tests/soak/run.sh

# The bench's load driver for CONNECT tunnels and new-connection rates (plain C + OpenSSL).
$(B)/tests/bench/tunnel_load: tests/bench/tunnel_load.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -Wno-format-nonliteral -o $@ $< -lssl -lcrypto

$(B)/tests/bench/mint_bench: tests/certs/mint_bench.c $(B)/libcrmgate.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) -Icerts $(CFLAGS) $(WARN) -Wno-missing-prototypes \
	    -o $@ $< $(B)/libcrmgate.a $(LDLIBS)

$(B)/tests/bench/custody_bench: tests/bench/custody_bench.c $(B)/libcrmgate.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) -Iproxy -Ipolicy $(CFLAGS) $(WARN) -Wno-missing-prototypes \
	    -o $@ $< $(B)/libcrmgate.a $(LDLIBS)

$(B)/tests/bench/policy_bench: tests/bench/policy_bench.c $(B)/libcrmgate.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) -Iproxy -Ipolicy $(CFLAGS) $(WARN) -Wno-missing-prototypes \
	    -o $@ $< $(B)/libcrmgate.a $(LDLIBS)

install: $(PROG)
	install -D -m 0755 $(PROG) $(DESTDIR)$(SBINDIR)/crmgate
	install -d $(DESTDIR)$(UNITDIR)
	sed -e 's|^ExecStart=/usr/sbin/crmgate|ExecStart=$(SBINDIR)/crmgate|' \
	    -e 's|^Documentation=file:/usr/share/doc/crmgate/|Documentation=file:$(DOCDIR)/|' \
	    systemd/crmgate.service > $(DESTDIR)$(UNITDIR)/crmgate.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/crmgate.service
	install -D -m 0644 systemd/crmgate.sysusers $(DESTDIR)$(SYSUSERSDIR)/crmgate.conf
	install -D -m 0644 systemd/crmgate.tmpfiles $(DESTDIR)$(TMPFILESDIR)/crmgate.conf
	install -D -m 0640 systemd/crmgate.json.example $(DESTDIR)$(CONFDIR)/crmgate.json.example
	install -D -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	install -D -m 0644 rules/README.md $(DESTDIR)$(DATADIR)/rules/README.md
	install -D -m 0644 rules/default.json $(DESTDIR)$(DATADIR)/rules/default.json
	install -d $(DESTDIR)$(DATADIR)/rules/examples
	install -m 0644 rules/examples/*.json $(DESTDIR)$(DATADIR)/rules/examples/
	install -d -m 0750 $(DESTDIR)$(CONFDIR)/rules
	[ -e $(DESTDIR)$(CONFDIR)/rules/default.json ] || \
	    install -m 0640 rules/default.json $(DESTDIR)$(CONFDIR)/rules/default.json

format:
	clang-format -i proxy/*.[ch] policy/*.[ch] certs/*.[ch] tests/unit/*.c

format-check:
	clang-format --dry-run --Werror proxy/*.[ch] policy/*.[ch] certs/*.[ch] tests/unit/*.c

clean:
	rm -rf build build-asan build-bench build-fuzz crmgate crmgate-asan

-include $(OBJ:.o=.d)
# a unit test also depends on the test-side headers it includes (classify_driver.h, ...)
-include $(UNIT_BINS:=.d)
