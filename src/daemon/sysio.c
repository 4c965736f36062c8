/*
 * sysio: the clocks and socket calls of the loop, or a test's doubles of
 * them (util/clock). The only file of daemon/ that reads a clock.
 */
#include "daemon/sysio.h"

#include "daemon/engine.h"
#include "util/clock.h"

static const struct engine_io *io; /* the doubles, or NULL */

void sysio_use(const struct engine_io *doubles)
{
    io = doubles;
}

int64_t sysio_mono_us(void)
{
    if (io != NULL && io->mono_us != NULL)
        return io->mono_us(io->ctx);
    return clock_mono_us();
}

int64_t sysio_mono_ms(void)
{
    return sysio_mono_us() / 1000;
}

uint64_t sysio_real_ns(void)
{
    if (io != NULL && io->real_ns != NULL)
        return io->real_ns(io->ctx);
    return clock_real_ns();
}

int64_t sysio_real_ms(void)
{
    return (int64_t)(sysio_real_ns() / 1000000ULL);
}

int sysio_recv_batch(int fd, struct net_dgram *d, int n)
{
    return io != NULL && io->recv_batch != NULL ? io->recv_batch(io->ctx, fd, d, n)
                                                : net_recv_batch(fd, d, n);
}

int sysio_send_batch(int fd, struct net_dgram *d, int n)
{
    return io != NULL && io->send_batch != NULL ? io->send_batch(io->ctx, fd, d, n)
                                                : net_send_batch(fd, d, n);
}
