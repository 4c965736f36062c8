#ifndef SG_VERSION_H
#define SG_VERSION_H
#define SG_VERSION "0.2.0"
#endif
