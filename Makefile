# tenant_iso: PGXS build
PG_CONFIG ?= pg_config

EXTENSION = tenant_iso
EXTVERSION = $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" $(EXTENSION).control)

MODULE_big = tenant_iso
OBJS = \
	src/tenant_iso.o \
	src/guc.o \
	src/elevated.o \
	src/kdf.o \
	src/token.o \
	src/tokenkeys.o \
	src/masterkey.o \
	src/registry.o \
	src/context.o \
	src/hooks.o \
	src/policy.o \
	src/guards.o \
	src/copy.o \
	src/cursors.o \
	src/residue.o \
	src/foreign.o \
	src/planner.o \
	src/envelope.o \
	src/keys.o \
	src/reencrypt.o \
	src/lthash.o \
	src/canonical.o \
	src/digest.o \
	src/peer.o

# Released install scripts are never edited.  Each upgrade script is
# assembled from one fragment per concern under sql/upgrade/A--B/, in name
# order.  Without an install script for the newest version, CREATE EXTENSION
# installs the oldest one and runs the upgrade chain.
UPGRADE_DIRS = $(sort $(wildcard $(srcdir)/sql/upgrade/*--*))
UPGRADES = $(foreach d,$(UPGRADE_DIRS),$(EXTENSION)--$(notdir $(d)).sql)
DATA_built = $(UPGRADES)
DATA = $(filter-out $(UPGRADES),$(wildcard $(EXTENSION)--*.sql))

PG_CPPFLAGS = -I$(srcdir)/src -I$(shell $(PG_CONFIG) --includedir) \
	-DTI_EXTENSION_VERSION=\"$(EXTVERSION)\"
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare
SHLIB_LINK = -lcrypto -lpq

REGRESS = surface catalog_columns tenant_id_syntax

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(EXTENSION)--%.sql: $(srcdir)/sql/upgrade/%/*.sql
	{ printf '/* $@: generated from sql/upgrade/$*/ by the Makefile */\n\n'; \
	  printf -- '-- complain if script is sourced in psql, rather than via ALTER EXTENSION\n'; \
	  printf '\\echo Use "ALTER EXTENSION $(EXTENSION) UPDATE" to load this file. \\quit\n'; \
	  for f in $(sort $(wildcard $(srcdir)/sql/upgrade/$*/*.sql)); do printf '\n'; cat "$$f"; done; } > $@
