/*
 * src/elevated.h
 *	  Pin search_path = pg_catalog, pg_temp around code that runs with more
 *	  rights than its caller (see src/elevated.c).
 */
#ifndef TI_ELEVATED_H
#define TI_ELEVATED_H

extern int	ti_pin_search_path(void);
extern void ti_unpin_search_path(int nestlevel);

#endif
