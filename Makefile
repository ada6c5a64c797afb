# tenant_iso: PGXS build
PG_CONFIG ?= pg_config

EXTENSION = tenant_iso
EXTVERSION = $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" $(EXTENSION).control)

MODULE_big = tenant_iso
OBJS = \
	src/tenant_iso.o \
	src/kdf.o \
	src/token.o \
	src/masterkey.o \
	src/registry.o \
	src/context.o \
	src/isolation.o \
	src/envelope.o \
	src/keys.o \
	src/reencrypt.o \
	src/validate.o \
	src/lthash.o \
	src/digest.o \
	src/peer.o

DATA = $(wildcard $(EXTENSION)--*.sql)

PG_CPPFLAGS = -I$(srcdir)/src -I$(shell $(PG_CONFIG) --includedir)
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare
SHLIB_LINK = -lcrypto -lpq

REGRESS = surface

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
