#!/bin/sh
# make run: writes a .env for a local trial if there is none, then runs the
# daemon in the foreground on 127.0.0.1:61773, logging to stdout.
set -eu
if [ ! -f .env ]; then
    umask 077
    secret=$(bin/securedgram keygen)
    cat > .env <<ENV
# Written by 'make run' for a local trial. See securedgram(8) for every setting.
SECUREDGRAM_SECRET=$secret
SECUREDGRAM_ADDRESS=127.0.0.1
SECUREDGRAM_PORT=61773
SECUREDGRAM_DB=securedgram.db
SECUREDGRAM_PIDFILE=securedgram.pid
SECUREDGRAM_LOG=stdout
# The trial runs as you. In production set a service user (the default is nobody).
SECUREDGRAM_USER=$(id -un)
ENV
    echo "wrote .env with a new secret (mode 600)"
fi
echo "starting securedgram in the foreground; stop it with Ctrl-C"
exec bin/securedgram --foreground --verbose start
