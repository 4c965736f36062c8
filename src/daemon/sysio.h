/*
 * sysio: the clocks and the socket calls of the daemon's loop, in one place
 * so that a test can put doubles in their stead (struct engine_io, from
 * engine_opts.io): the fuzzer drives the whole engine through them. With no
 * doubles set they are CLOCK_MONOTONIC, CLOCK_REALTIME, net_recv_batch and
 * net_send_batch.
 *
 * One setting for the process (the daemon runs one engine): engine_new sets
 * it, engine_free clears it.
 */
#ifndef SG_SYSIO_H
#define SG_SYSIO_H

#include "util/net.h"

#include <stdint.h>

struct engine_io; /* daemon/engine.h */

/* Uses io's members (those not NULL) from now on; NULL: the real calls again. io is borrowed. */
void sysio_use(const struct engine_io *io);

/* CLOCK_MONOTONIC in microseconds, or the double's. */
int64_t sysio_mono_us(void);

/* CLOCK_MONOTONIC in milliseconds (sysio_mono_us / 1000). */
int64_t sysio_mono_ms(void);

/* CLOCK_REALTIME in nanoseconds, or the double's. */
uint64_t sysio_real_ns(void);

/* The wall clock as the store writes it: ms since the epoch (sysio_real_ns / 10^6). */
int64_t sysio_real_ms(void);

/* net_recv_batch(fd, d, n), or the double's: datagrams received (0: none), or -1 with errno. */
int sysio_recv_batch(int fd, struct net_dgram *d, int n);

/* net_send_batch(fd, d, n), or the double's: sets each d[i].err; returns how many were sent. */
int sysio_send_batch(int fd, struct net_dgram *d, int n);

#endif
