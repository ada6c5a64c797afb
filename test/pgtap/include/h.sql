-- test/pgtap/include/h.sql: helpers shared by the attack suites (\ir it
-- after the extensions are created).  Schema h, usable by every role.
--   h.run(q)  'ok <rows>' or 'ERROR <sqlstate>'; the statement's effects stay
--   h.try(q)  the same, but the statement is undone
--   h.val(q)  the first value q returns as text ('null' for NULL), or
--             'ERROR <sqlstate>'
--   h.msg(q)  message | detail | hint of the error q raises, or 'no error'
CREATE SCHEMA h;
GRANT USAGE ON SCHEMA h TO PUBLIC;

CREATE FUNCTION h.run(q text) RETURNS text
LANGUAGE plpgsql AS $f$
DECLARE
	n bigint;
BEGIN
	EXECUTE q;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN 'ok ' || n;
EXCEPTION WHEN OTHERS THEN
	RETURN 'ERROR ' || SQLSTATE;
END
$f$;

CREATE FUNCTION h.try(q text) RETURNS text
LANGUAGE plpgsql AS $f$
DECLARE
	n bigint;
BEGIN
	EXECUTE q;
	GET DIAGNOSTICS n = ROW_COUNT;
	RAISE EXCEPTION USING ERRCODE = 'TIUND', MESSAGE = 'ok ' || n;
EXCEPTION WHEN OTHERS THEN
	IF SQLSTATE = 'TIUND' THEN
		RETURN SQLERRM;
	END IF;
	RETURN 'ERROR ' || SQLSTATE;
END
$f$;

CREATE FUNCTION h.val(q text) RETURNS text
LANGUAGE plpgsql AS $f$
DECLARE
	v text;
BEGIN
	EXECUTE q INTO v;
	RETURN coalesce(v, 'null');
EXCEPTION WHEN OTHERS THEN
	RETURN 'ERROR ' || SQLSTATE;
END
$f$;

CREATE FUNCTION h.msg(q text) RETURNS text
LANGUAGE plpgsql AS $f$
DECLARE
	m text;
	d text;
	hn text;
BEGIN
	EXECUTE q;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL, hn = PG_EXCEPTION_HINT;
	RETURN concat_ws(' | ', m, d, hn);
END
$f$;
