/*
 * src/masterkey.c
 *	  The master key: read from tenant_iso.master_key_command when needed,
 *	  never stored, never logged.  Only HKDF-derived subkeys leave here.
 *
 * The command is run with OpenPipeStream and must print 64 hex digits.
 * Derived subkeys are cached per backend (keyed by purpose) until the
 * command setting changes; the master key itself is wiped as soon as the
 * subkey is derived.  Errors use SQLSTATE 39000 (external routine
 * invocation exception) and never include the command's output.
 *
 * Elevated paths: the master key command runs as the server's operating
 * system user (OpenPipeStream, through /bin/sh) on behalf of whichever
 * backend first needs a subkey, whoever its caller is.  It involves no SQL
 * and no search_path; what it runs is fixed by the PGC_SIGHUP settings
 * master_key_command and previous_master_key_command, which only the
 * server's configuration can set, and its environment is the postmaster's.
 */
#include "postgres.h"

#include <sys/wait.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "utils/guc.h"

#include "guc.h"
#include "kdf.h"
#include "tenant_iso.h"

#define MAX_CACHED_SUBKEYS 8

typedef struct SubkeyEntry
{
	char		purpose[32];
	uint8		key[TI_KEY_LEN];
} SubkeyEntry;

static SubkeyEntry subkeys[MAX_CACHED_SUBKEYS];
static int	n_subkeys = 0;

static void
wipe_subkeys(void)
{
	ti_wipe(subkeys, sizeof(subkeys));
	n_subkeys = 0;
}

void
ti_assign_master_key_command(const char *newval, void *extra)
{
	wipe_subkeys();
}

static void
wipe_at_exit(int code, Datum arg)
{
	wipe_subkeys();
}

void
ti_masterkey_init(void)
{
	on_proc_exit(wipe_at_exit, (Datum) 0);
}

/*
 * Run the command and parse its output.  Returns NULL on success, or a
 * static description of what went wrong (never containing the output).
 */
static const char *
load_master_key(const char *command, uint8 *out)
{
	FILE	   *fh;
	char		buf[256];
	size_t		n;
	int			rc;
	int			parse;

	if (command == NULL || command[0] == '\0')
		return "The master key command is not set.";

	fflush(NULL);
	fh = OpenPipeStream(command, "r");
	if (fh == NULL)
		return "The master key command could not be started.";
	n = fread(buf, 1, sizeof(buf), fh);
	/* drain anything left so the child is not killed by SIGPIPE */
	while (!feof(fh) && !ferror(fh))
	{
		char		junk[256];

		if (fread(junk, 1, sizeof(junk), fh) == 0)
			break;
		n = sizeof(buf);		/* too long: force a parse failure */
	}
	rc = ClosePipeStream(fh);
	parse = (n < sizeof(buf)) ? ti_parse_hex_key(buf, n, out) : -1;
	ti_wipe(buf, sizeof(buf));
	if (rc != 0)
	{
		ti_wipe(out, TI_KEY_LEN);
		return "The master key command failed.";
	}
	if (parse != 0)
		return "The master key command did not print exactly 64 hexadecimal digits.";
	return NULL;
}

/*
 * HKDF of the master key that command prints, for purpose.  Returns NULL,
 * or a static description of what went wrong (never the key).
 */
static const char derivation_failed[] = "Key derivation failed.";

static const char *
try_derive_from(const char *command, const char *purpose, uint8 *out)
{
	uint8		master[TI_KEY_LEN];
	const char *problem;
	static const char salt[] = "tenant_iso v1";

	problem = load_master_key(command, master);
	if (problem != NULL)
		return problem;
	if (ti_hkdf_sha256(master, TI_KEY_LEN,
					   (const uint8 *) salt, sizeof(salt) - 1,
					   (const uint8 *) purpose, strlen(purpose),
					   out, TI_KEY_LEN) != 0)
		problem = derivation_failed;
	ti_wipe(master, sizeof(master));
	return problem;
}

static void
derive_from(const char *command, const char *setting, const char *purpose, uint8 *out)
{
	const char *problem = try_derive_from(command, purpose, out);

	if (problem == derivation_failed)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_INVOCATION_EXCEPTION),
				 errmsg("key derivation failed")));
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_INVOCATION_EXCEPTION),
				 errmsg("master key is not available"),
				 errdetail_internal("%s (%s)", problem, setting),
				 errhint("Set %s to a command that prints the key, then reload the configuration.", setting)));
}

static bool
cached_subkey(const char *purpose, uint8 *out)
{
	int			i;

	for (i = 0; i < n_subkeys; i++)
	{
		if (strcmp(subkeys[i].purpose, purpose) == 0)
		{
			memcpy(out, subkeys[i].key, TI_KEY_LEN);
			return true;
		}
	}
	return false;
}

static void
cache_subkey(const char *purpose, const uint8 *key)
{
	if (n_subkeys < MAX_CACHED_SUBKEYS && strlen(purpose) < sizeof(subkeys[0].purpose))
	{
		strlcpy(subkeys[n_subkeys].purpose, purpose, sizeof(subkeys[0].purpose));
		memcpy(subkeys[n_subkeys].key, key, TI_KEY_LEN);
		n_subkeys++;
	}
}

/*
 * Derive a purpose-specific subkey from the master key with HKDF-SHA256.
 * Raises 39000 if the master key cannot be loaded.
 */
void
ti_derive_key(const char *purpose, uint8 *out)
{
	if (cached_subkey(purpose, out))
		return;
	derive_from(ti_master_key_command, "tenant_iso.master_key_command", purpose, out);
	cache_subkey(purpose, out);
}

/*
 * The same, but returns false instead of raising when the master key cannot
 * be loaded (for the digest trigger, which must not make writes fail).
 */
bool
ti_try_derive_key(const char *purpose, uint8 *out)
{
	if (cached_subkey(purpose, out))
		return true;
	if (try_derive_from(ti_master_key_command, purpose, out) != NULL)
		return false;
	cache_subkey(purpose, out);
	return true;
}

/* The same, from the previous master key (never cached). */
void
ti_derive_previous_key(const char *purpose, uint8 *out)
{
	derive_from(ti_previous_master_key_command, "tenant_iso.previous_master_key_command",
				purpose, out);
}

bool
ti_master_key_available(void)
{
	uint8		master[TI_KEY_LEN];
	bool		ok = (load_master_key(ti_master_key_command, master) == NULL);

	ti_wipe(master, sizeof(master));
	return ok;
}

PG_FUNCTION_INFO_V1(ti_master_key_loadable);
Datum
ti_master_key_loadable(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(ti_master_key_available());
}
