/*
 * src/admission.c
 *	  Admission of a tenant's statements: at most max_active_statements
 *	  running at once, the others waiting in FIFO order; and the rate limit,
 *	  a token bucket of max_statements_per_second.
 *
 * A statement that may not run yet joins its tenant's FIFO (a list of slot
 * numbers, one slot per PGPROC, in the tenant's shared entry) and sleeps on
 * its latch.  Whoever frees a slot, or leaves the FIFO from its head, sets
 * the latch of the new head; the head takes the slot when one is free.  The
 * limit is read again on every wake-up (at most once a second), so a
 * changed limit applies to statements already waiting.  A wait ends after
 * tenant_iso.admission_timeout with 53300; cancel and terminate interrupt
 * it (CHECK_FOR_INTERRUPTS), and leave the FIFO on the way out (PG_CATCH,
 * or the exit callback in stats.c for FATAL).
 *
 * The bucket holds at most max(1, rate / 10) tokens and refills at rate
 * tokens per second.  A statement that finds no token reserves the next
 * one (the bucket goes negative) and sleeps until it is due, so waiting
 * statements are served in order and the long-run rate is exact.  When the
 * token is due later than the admission timeout, the statement fails at
 * once with 53400.
 *
 * Elevated paths: none.  Nothing here runs SQL or resolves names.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/inval.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "compat.h"
#include "neighbours.h"

int			ti_admission_timeout_ms = 10000;

/* the entry whose bucket this backend sleeps on, for the exit callback */
static TiTenantStats *rate_waiting_on = NULL;

int
ti_my_slot(void)
{
	int			n = MyProc ? TI_MY_PROCNO : -1;

	return (n >= 0 && n < ti_nslots) ? n : -1;
}

void
ti_wake_slot(int slot)
{
	if (slot >= 0 && slot < ti_nslots)
		SetLatch(&GetPGProcByNumber(slot)->procLatch);
}

/* count a throttled or rejected statement; the caller holds e->mutex */
static void
count_event(TiTenantStats *e, bool rejected)
{
	ti_stats_rotate(e, ti_stats_period_of(GetCurrentTimestamp()));
	if (rejected)
	{
		e->cur.rejected++;
		e->total.rejected++;
	}
	else
	{
		e->cur.throttled++;
		e->total.throttled++;
	}
}

/* One LOG line per tenant and period when a limit holds a statement back. */
void
ti_overload_log(TiTenantStats *e, const char *tenant, const char *what)
{
	int64		period = ti_stats_period_of(GetCurrentTimestamp());
	bool		log_it;

	SpinLockAcquire(&e->mutex);
	log_it = e->logged_period != period;
	e->logged_period = period;
	SpinLockRelease(&e->mutex);
	if (log_it)
		ereport(LOG,
				(errmsg("tenant_iso: tenant \"%s\" is held back by its limit %s", tenant, what),
				 errhidestmt(true),
				 errhidecontext(true)));
}

/*
 * Leave e's FIFO if this backend is in it, and wake the new head if we
 * were the head.  Never raises.
 */
void
ti_admission_dequeue(TiTenantStats *e)
{
	int			me = ti_my_slot();
	int			head = -1;

	if (me < 0)
		return;
	SpinLockAcquire(&e->mutex);
	if (ti_slots[me].queued_on == e)
	{
		int			prev = -1,
					cur = e->wait_head;

		while (cur >= 0 && cur != me)
		{
			prev = cur;
			cur = ti_slots[cur].next;
		}
		if (cur == me)
		{
			if (prev < 0)
				e->wait_head = ti_slots[me].next;
			else
				ti_slots[prev].next = ti_slots[me].next;
			if (e->wait_tail == me)
				e->wait_tail = prev;
			if (prev < 0)
				head = e->wait_head;
		}
		ti_slots[me].next = -1;
		ti_slots[me].queued_on = NULL;
		e->waiting--;
	}
	SpinLockRelease(&e->mutex);
	ti_wake_slot(head);
}

/* Give back a slot taken by ti_admission_wait (or counted as active). */
void
ti_admission_release(TiTenantStats *e)
{
	int			head;

	SpinLockAcquire(&e->mutex);
	e->active--;
	head = e->wait_head;
	SpinLockRelease(&e->mutex);
	ti_wake_slot(head);
}

static long
ms_until(TimestampTz t)
{
	return TimestampDifferenceMilliseconds(GetCurrentTimestamp(), t);
}

/* Wait at the FIFO until this backend is its head and a slot is free. */
static void
wait_in_line(TiTenantStats *e, const char *tenant, int me, TimestampTz deadline)
{
	for (;;)
	{
		long		remain;
		bool		admitted = false;
		int			next = -1;
		int			limit;

		/* a limit changed by another session applies to us now */
		AcceptInvalidationMessages();
		limit = ti_limits_for(tenant)->max_active;

		SpinLockAcquire(&e->mutex);
		if (e->wait_head == me && (limit <= 0 || e->active < limit))
		{
			e->wait_head = ti_slots[me].next;
			if (e->wait_head < 0)
				e->wait_tail = -1;
			ti_slots[me].next = -1;
			ti_slots[me].queued_on = NULL;
			e->waiting--;
			e->active++;
			admitted = true;
			if (e->wait_head >= 0 && (limit <= 0 || e->active < limit))
				next = e->wait_head;
		}
		SpinLockRelease(&e->mutex);
		if (admitted)
		{
			ti_wake_slot(next);
			return;
		}

		remain = ms_until(deadline);
		if (remain <= 0)
		{
			ti_admission_dequeue(e);
			SpinLockAcquire(&e->mutex);
			count_event(e, true);
			SpinLockRelease(&e->mutex);
			ereport(ERROR,
					(errcode(ERRCODE_TOO_MANY_CONNECTIONS),
					 errmsg("too many active statements for this tenant"),
					 errdetail("The limit max_active_statements = %d was reached, and no statement finished within tenant_iso.admission_timeout (%d ms).",
							   limit, ti_admission_timeout_ms)));
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Min(remain, 1000), ti_wait_event_admission());
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Take one of e's active slots, waiting in line when all are in use.
 * Raises 53300 when no slot comes within the admission timeout.
 */
void
ti_admission_wait(TiTenantStats *e, const char *tenant)
{
	int			me = ti_my_slot();
	int			limit = ti_limits_for(tenant)->max_active;
	TimestampTz deadline;

	SpinLockAcquire(&e->mutex);
	if (limit <= 0 || me < 0 || (e->wait_head < 0 && e->active < limit))
	{
		e->active++;
		SpinLockRelease(&e->mutex);
		return;
	}
	ti_slots[me].next = -1;
	ti_slots[me].queued_on = e;
	if (e->wait_tail >= 0)
		ti_slots[e->wait_tail].next = me;
	else
		e->wait_head = me;
	e->wait_tail = me;
	e->waiting++;
	count_event(e, false);
	SpinLockRelease(&e->mutex);

	ti_overload_log(e, tenant, psprintf("max_active_statements = %d", limit));
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ti_admission_timeout_ms);

	PG_TRY();
	{
		wait_in_line(e, tenant, me, deadline);
	}
	PG_CATCH();
	{
		ti_admission_dequeue(e);
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/*
 * Take a token from e's bucket, sleeping until one is due.  Raises 53400
 * when it is due later than the admission timeout.
 */
void
ti_rate_wait(TiTenantStats *e, const char *tenant, double rate)
{
	double		burst = Max(1.0, rate / 10.0);
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz due;
	double		wait_us;

	SpinLockAcquire(&e->mutex);
	if (e->bucket_at == 0)
		e->tokens = burst;
	else if (now > e->bucket_at)
		e->tokens = Min(burst, e->tokens + (double) (now - e->bucket_at) / USECS_PER_SEC * rate);
	else
		e->tokens = Min(burst, e->tokens);
	e->bucket_at = Max(now, e->bucket_at);
	if (e->tokens >= 1.0)
	{
		e->tokens -= 1.0;
		SpinLockRelease(&e->mutex);
		return;
	}
	wait_us = (1.0 - e->tokens) / rate * USECS_PER_SEC;
	if (wait_us > (double) ti_admission_timeout_ms * 1000.0)
	{
		count_event(e, true);
		SpinLockRelease(&e->mutex);
		ti_overload_log(e, tenant, psprintf("max_statements_per_second = %g", rate));
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("statement rate limit of this tenant exceeded"),
				 errdetail("The limit max_statements_per_second = %g would delay this statement beyond tenant_iso.admission_timeout (%d ms).",
						   rate, ti_admission_timeout_ms)));
	}
	e->tokens -= 1.0;			/* reserve the next token */
	count_event(e, false);
	e->waiting++;
	SpinLockRelease(&e->mutex);
	ti_overload_log(e, tenant, psprintf("max_statements_per_second = %g", rate));

	due = now + (TimestampTz) wait_us;
	rate_waiting_on = e;
	PG_TRY();
	{
		long		remain;

		while ((remain = ms_until(due)) > 0 || GetCurrentTimestamp() < due)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 Max(remain, 1), ti_wait_event_rate());
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_FINALLY();
	{
		rate_waiting_on = NULL;
		SpinLockAcquire(&e->mutex);
		e->waiting--;
		SpinLockRelease(&e->mutex);
	}
	PG_END_TRY();
}

/* The backend exits (FATAL, or a clean exit) while it may be waiting. */
void
ti_admission_exit(void)
{
	int			me = ti_my_slot();

	if (me >= 0 && ti_slots[me].queued_on != NULL)
		ti_admission_dequeue(ti_slots[me].queued_on);
	if (rate_waiting_on != NULL)
	{
		SpinLockAcquire(&rate_waiting_on->mutex);
		rate_waiting_on->waiting--;
		SpinLockRelease(&rate_waiting_on->mutex);
		rate_waiting_on = NULL;
	}
}
