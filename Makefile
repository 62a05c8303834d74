# Builds libace.a, the ace-* binaries, their unit tests, and runs the suites.

PREFIX   ?= /usr/local
BUILD    ?= build
CC       ?= cc
SAN      ?=

PG_INC   := $(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)
CPPFLAGS += -D_GNU_SOURCE -Ilibace/include -Ilibace/src -I$(PG_INC)
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 -pthread -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes
LDLIBS   += -lpq -lhiredis -lyaml -lcjson -lcrypto -lpthread -lm

ifeq ($(SAN),1)
BUILD    := build-asan
CFLAGS   += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS  += -fsanitize=address,undefined
endif

LIB_SRC  := $(wildcard libace/src/*.c)
LIB_OBJ  := $(patsubst libace/src/%.c,$(BUILD)/obj/%.o,$(LIB_SRC)) $(BUILD)/obj/migrations_embedded.o
LIB      := $(BUILD)/libace.a
CMDS     := ace-ingest ace-migrate ace-cache ace-stats ace-bench
BINS     := $(addprefix $(BUILD)/bin/,$(CMDS))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNITS    := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
SQL      := $(sort $(wildcard sql/*.sql))
MAN1     := $(wildcard man/*.1)
MAN5     := $(wildcard man/*.5)

.PHONY: all lib unit check demo bench-ingest bench-cache bench-storage install uninstall clean

all: $(BINS)

lib: $(LIB)

$(BUILD)/obj/%.o: libace/src/%.c $(wildcard libace/include/ace/*.h libace/src/*.h)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/gen/migrations_embedded.c: $(SQL) scripts/embed-sql
	@mkdir -p $(@D)
	scripts/embed-sql $(SQL) > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/migrations_embedded.o: $(BUILD)/gen/migrations_embedded.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/obj/cli.o: cmd/cli.c cmd/cli.h $(wildcard libace/include/ace/*.h)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

# cmd/NAME_*.c are the other files of ace-NAME, linked into that binary only.
$(BUILD)/obj/cmd/%.o: cmd/%.c $(wildcard cmd/*.h libace/include/ace/*.h)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

cmd_objects = $(patsubst cmd/%.c,$(BUILD)/obj/cmd/%.o,$(wildcard cmd/$(1)_*.c))

$(BUILD)/bin/ace-cache: $(call cmd_objects,cache)
$(BUILD)/bin/ace-stats: $(call cmd_objects,stats)

$(BUILD)/bin/%: cmd/%.c $(wildcard cmd/*.h) $(BUILD)/obj/cli.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(filter $(BUILD)/obj/cmd/%.o,$^) \
	    $(BUILD)/obj/cli.o $(LIB) $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) -lcmocka $(LDLIBS)

# Runs the cmocka unit tests, which need no server.
unit: $(UNITS)
	@rc=0; for t in $(UNITS); do $$t || rc=1; done; exit $$rc

# Installs packages, builds, runs every suite (plain and sanitized) and
# prints "N passed, N failed" last.
check:
	scripts/check

demo:
	scripts/demo

bench-ingest: all
	scripts/bench-ingest

bench-cache: all
	scripts/bench-cache

bench-storage: all
	scripts/bench-storage

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib \
	    $(DESTDIR)$(PREFIX)/include/ace $(DESTDIR)$(PREFIX)/share/man/man1 \
	    $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/ace/sql
	install -m 755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(LIB) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 libace/include/ace/*.h $(DESTDIR)$(PREFIX)/include/ace/
	install -m 644 $(SQL) $(DESTDIR)$(PREFIX)/share/ace/sql/
	$(if $(MAN1),install -m 644 $(MAN1) $(DESTDIR)$(PREFIX)/share/man/man1/)
	$(if $(MAN5),install -m 644 $(MAN5) $(DESTDIR)$(PREFIX)/share/man/man5/)

uninstall:
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/bin/,$(CMDS)) $(DESTDIR)$(PREFIX)/lib/libace.a
	rm -rf $(DESTDIR)$(PREFIX)/include/ace $(DESTDIR)$(PREFIX)/share/ace
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/share/man/man1/,$(notdir $(MAN1)))
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/share/man/man5/,$(notdir $(MAN5)))

clean:
	rm -rf build build-asan build-clang
