# tenant_iso: PGXS build
PG_CONFIG ?= pg_config

EXTENSION = tenant_iso
EXTVERSION = $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" $(srcdir)/$(EXTENSION).control)

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
	src/history.o \
	src/stats.o \
	src/admission.o \
	src/limits.o \
	src/peer.o \
	src/monitor.o

# SQL scripts.  Released install scripts (tenant_iso--0.1.0.sql, checked in)
# are never edited.  Every change to the SQL surface goes into two places:
#   - sql/src/NN_<capability>.sql, the install script of the current version
#     (default_version in tenant_iso.control), concatenated in name order
#     into tenant_iso--$(EXTVERSION).sql;
#   - the next upgrade's fragment directory sql/upgrade/A--B/ (one fragment
#     per concern, in name order), assembled into tenant_iso--A--B.sql.
# test/pgtap/upgrade.sql installs the oldest release, runs ALTER EXTENSION
# UPDATE and compares every object with a fresh install of the current
# version, so the two must stay equal.  When a version is released, its
# generated install script is checked in (it then is a released one) and
# sql/src/ goes on as the next version's.
# Paths go through $(srcdir), so that make -C and VPATH builds work.
SRC_SQL = $(sort $(wildcard $(srcdir)/sql/src/*.sql))
INSTALL_SQL = $(EXTENSION)--$(EXTVERSION).sql
UPGRADE_DIRS = $(sort $(wildcard $(srcdir)/sql/upgrade/*--*))
UPGRADES = $(foreach d,$(UPGRADE_DIRS),$(EXTENSION)--$(notdir $(d)).sql)
DATA_built = $(if $(SRC_SQL),$(INSTALL_SQL)) $(UPGRADES)
# DATA is relative to $(srcdir): PGXS installs $(addprefix $(srcdir)/, $(DATA))
DATA = $(filter-out $(DATA_built),$(patsubst $(srcdir)/%,%,$(wildcard $(srcdir)/$(EXTENSION)--*.sql)))

PG_CPPFLAGS = -I$(srcdir)/src -I$(shell $(PG_CONFIG) --includedir) \
	-DTI_EXTENSION_VERSION=\"$(EXTVERSION)\"
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare
SHLIB_LINK = -lcrypto -lpq

REGRESS = surface catalog_columns tenant_id_syntax fail_closed switch_grant protect_aliasing
REGRESS_OPTS = --inputdir=$(srcdir)/test
# make installcheck runs the isolation specs too (scripts/test runs them as a
# suite of their own, with ISOLATION= here)
ISOLATION = $(sort $(patsubst $(srcdir)/test/isolation/specs/%.spec,%,$(wildcard $(srcdir)/test/isolation/specs/*.spec)))
ISOLATION_OPTS = --inputdir=$(srcdir)/test/isolation --load-extension=tenant_iso

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(INSTALL_SQL): $(SRC_SQL) $(srcdir)/$(EXTENSION).control
	{ printf '/* $@: generated from sql/src/ by the Makefile */\n\n'; \
	  printf -- '-- complain if script is sourced in psql, rather than via CREATE EXTENSION\n'; \
	  printf '\\echo Use "CREATE EXTENSION $(EXTENSION)" to load this file. \\quit\n'; \
	  for f in $(SRC_SQL); do printf '\n'; cat "$$f"; done; } > $@

$(EXTENSION)--%.sql: $(srcdir)/sql/upgrade/%/*.sql
	{ printf '/* $@: generated from sql/upgrade/$*/ by the Makefile */\n\n'; \
	  printf -- '-- complain if script is sourced in psql, rather than via ALTER EXTENSION\n'; \
	  printf '\\echo Use "ALTER EXTENSION $(EXTENSION) UPDATE" to load this file. \\quit\n'; \
	  for f in $(sort $(wildcard $(srcdir)/sql/upgrade/$*/*.sql)); do printf '\n'; cat "$$f"; done; } > $@
