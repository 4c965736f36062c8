/*
 * pg_lib: libpq, loaded when a PostgreSQL database is opened (dlopen), not
 * linked: linked, its libraries (TLS, Kerberos, LDAP) cost every daemon
 * about 1.4 MB of memory, SQLite's too. The backend's files call libpq by
 * its own names; here they become calls through the table pg_lib_load
 * fills. Private to src/store/pg*.c.
 */
#ifndef SG_PG_LIB_H
#define SG_PG_LIB_H

#include <libpq-fe.h>

#include <stddef.h>

/* Every libpq function the backend calls. */
#define PG_LIB_FUNCS(X)                                                                            \
    X(PQbackendPID)                                                                                \
    X(PQclear)                                                                                     \
    X(PQcmdStatus)                                                                                 \
    X(PQcmdTuples)                                                                                 \
    X(PQconnectdbParams)                                                                           \
    X(PQconnectionNeedsPassword)                                                                   \
    X(PQconninfoFree)                                                                              \
    X(PQconninfoParse)                                                                             \
    X(PQconsumeInput)                                                                              \
    X(PQdb)                                                                                        \
    X(PQerrorMessage)                                                                              \
    X(PQfinish)                                                                                    \
    X(PQflush)                                                                                     \
    X(PQfname)                                                                                     \
    X(PQfreemem)                                                                                   \
    X(PQftype)                                                                                     \
    X(PQgetResult)                                                                                 \
    X(PQgetisnull)                                                                                 \
    X(PQgetlength)                                                                                 \
    X(PQgetvalue)                                                                                  \
    X(PQhost)                                                                                      \
    X(PQisBusy)                                                                                    \
    X(PQnfields)                                                                                   \
    X(PQnotifies)                                                                                  \
    X(PQntuples)                                                                                   \
    X(PQport)                                                                                      \
    X(PQresetPoll)                                                                                 \
    X(PQresetStart)                                                                                \
    X(PQresultErrorField)                                                                          \
    X(PQresultStatus)                                                                              \
    X(PQsendPrepare)                                                                               \
    X(PQsendQuery)                                                                                 \
    X(PQsendQueryParams)                                                                           \
    X(PQsendQueryPrepared)                                                                         \
    X(PQserverVersion)                                                                             \
    X(PQsetNoticeProcessor)                                                                        \
    X(PQsetnonblocking)                                                                            \
    X(PQsocket)                                                                                    \
    X(PQstatus)                                                                                    \
    X(PQtransactionStatus)                                                                         \
    X(PQuser)

struct pg_lib {
#define PG_LIB_MEMBER(f) __typeof__(f) *f;
    PG_LIB_FUNCS(PG_LIB_MEMBER)
#undef PG_LIB_MEMBER
};

extern struct pg_lib pg_lib;

/*
 * Loads libpq (libpq.so.5) and finds its functions, once. Returns 0, or -1
 * with one line in err (libpq is not installed: apt-get install libpq5).
 */
int pg_lib_load(char *err, size_t errlen);

#ifndef PG_LIB_TABLE /* pg_lib.c names the table's members themselves */
#define PQbackendPID (pg_lib.PQbackendPID)
#define PQclear (pg_lib.PQclear)
#define PQcmdStatus (pg_lib.PQcmdStatus)
#define PQcmdTuples (pg_lib.PQcmdTuples)
#define PQconnectdbParams (pg_lib.PQconnectdbParams)
#define PQconnectionNeedsPassword (pg_lib.PQconnectionNeedsPassword)
#define PQconninfoFree (pg_lib.PQconninfoFree)
#define PQconninfoParse (pg_lib.PQconninfoParse)
#define PQconsumeInput (pg_lib.PQconsumeInput)
#define PQdb (pg_lib.PQdb)
#define PQerrorMessage (pg_lib.PQerrorMessage)
#define PQfinish (pg_lib.PQfinish)
#define PQflush (pg_lib.PQflush)
#define PQfname (pg_lib.PQfname)
#define PQfreemem (pg_lib.PQfreemem)
#define PQftype (pg_lib.PQftype)
#define PQgetResult (pg_lib.PQgetResult)
#define PQgetisnull (pg_lib.PQgetisnull)
#define PQgetlength (pg_lib.PQgetlength)
#define PQgetvalue (pg_lib.PQgetvalue)
#define PQhost (pg_lib.PQhost)
#define PQisBusy (pg_lib.PQisBusy)
#define PQnfields (pg_lib.PQnfields)
#define PQnotifies (pg_lib.PQnotifies)
#define PQntuples (pg_lib.PQntuples)
#define PQport (pg_lib.PQport)
#define PQresetPoll (pg_lib.PQresetPoll)
#define PQresetStart (pg_lib.PQresetStart)
#define PQresultErrorField (pg_lib.PQresultErrorField)
#define PQresultStatus (pg_lib.PQresultStatus)
#define PQsendPrepare (pg_lib.PQsendPrepare)
#define PQsendQuery (pg_lib.PQsendQuery)
#define PQsendQueryParams (pg_lib.PQsendQueryParams)
#define PQsendQueryPrepared (pg_lib.PQsendQueryPrepared)
#define PQserverVersion (pg_lib.PQserverVersion)
#define PQsetNoticeProcessor (pg_lib.PQsetNoticeProcessor)
#define PQsetnonblocking (pg_lib.PQsetnonblocking)
#define PQsocket (pg_lib.PQsocket)
#define PQstatus (pg_lib.PQstatus)
#define PQtransactionStatus (pg_lib.PQtransactionStatus)
#define PQuser (pg_lib.PQuser)
#endif

#endif
