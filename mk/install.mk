# install, uninstall, lint-man: included by the Makefile (-include mk/install.mk).
#
#   make install   [PREFIX=/usr/local] [DESTDIR=]   programs, man pages, schema,
#                  example .env, systemd unit and FreeBSD rc.d script
#   make uninstall [PREFIX=...] [DESTDIR=...]      removes exactly those files
#   make lint-man                                  mandoc -T lint -W warning, fails on any message
#
# Where things go (all under $(DESTDIR)):
#   $(BINDIR)         securedgram sg-send sg-recv sg-clean          (mode 755)
#   $(MANDIR)/man1    sg-send.1 sg-recv.1 sg-clean.1                (mode 644)
#   $(MANDIR)/man5    securedgram-peers.5                           (mode 644)
#   $(MANDIR)/man8    securedgram.8                                 (mode 644)
#   $(DATADIR)        schema.sql securedgram.env.example peers.example
#                     securedgram.service securedgram.rc            (mode 644)
# The daemon goes to bin, not sbin: operators and scripts run it as a command
# (securedgram keygen, status) as well as a service, as the original did.
# In the man pages and the contrib files, /usr/local/bin and
# /usr/local/share/securedgram are replaced by the installed BINDIR and DATADIR.

INSTALL  ?= install
MANDOC   ?= mandoc
BINDIR   ?= $(PREFIX)/bin
MANDIR   ?= $(PREFIX)/share/man
DATADIR  ?= $(PREFIX)/share/securedgram

MAN1     := man/sg-send.1 man/sg-recv.1 man/sg-clean.1
MAN5     := man/securedgram-peers.5
MAN8     := man/securedgram.8
MANPAGES := $(MAN1) $(MAN5) $(MAN8)
DATA     := data/schema.sql data/schema-pg.sql data/securedgram.env.example data/peers.example
CONTRIB  := contrib/securedgram.service contrib/securedgram.rc
GRAFANA  := contrib/grafana/securedgram.json # installed as grafana-securedgram.json

# Rewrites the default paths to the installed ones.
INSTALL_SED = sed -e 's|/usr/local/bin/|$(BINDIR)/|g' -e 's|/usr/local/share/securedgram|$(DATADIR)|g'

install: $(PROG_BIN)
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
	  $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DATADIR)
	$(INSTALL) -m 755 $(PROG_BIN) $(DESTDIR)$(BINDIR)/
	$(INSTALL) -m 644 $(DATA) $(DESTDIR)$(DATADIR)/
	$(INSTALL) -m 644 $(GRAFANA) $(DESTDIR)$(DATADIR)/grafana-securedgram.json
	@set -e; for f in $(MAN1); do \
	  echo "$(INSTALL_SED) $$f > $(DESTDIR)$(MANDIR)/man1/$${f##*/}; chmod 644 ..."; \
	  $(INSTALL_SED) $$f > $(DESTDIR)$(MANDIR)/man1/$${f##*/}; \
	  chmod 644 $(DESTDIR)$(MANDIR)/man1/$${f##*/}; \
	done; for f in $(MAN5); do \
	  echo "$(INSTALL_SED) $$f > $(DESTDIR)$(MANDIR)/man5/$${f##*/}; chmod 644 ..."; \
	  $(INSTALL_SED) $$f > $(DESTDIR)$(MANDIR)/man5/$${f##*/}; \
	  chmod 644 $(DESTDIR)$(MANDIR)/man5/$${f##*/}; \
	done; for f in $(MAN8); do \
	  echo "$(INSTALL_SED) $$f > $(DESTDIR)$(MANDIR)/man8/$${f##*/}; chmod 644 ..."; \
	  $(INSTALL_SED) $$f > $(DESTDIR)$(MANDIR)/man8/$${f##*/}; \
	  chmod 644 $(DESTDIR)$(MANDIR)/man8/$${f##*/}; \
	done; for f in $(CONTRIB); do \
	  echo "$(INSTALL_SED) $$f > $(DESTDIR)$(DATADIR)/$${f##*/}; chmod 644 ..."; \
	  $(INSTALL_SED) $$f > $(DESTDIR)$(DATADIR)/$${f##*/}; \
	  chmod 644 $(DESTDIR)$(DATADIR)/$${f##*/}; \
	done

uninstall:
	rm -f $(PROGS:%=$(DESTDIR)$(BINDIR)/%)
	rm -f $(MAN1:man/%=$(DESTDIR)$(MANDIR)/man1/%) $(MAN5:man/%=$(DESTDIR)$(MANDIR)/man5/%) \
	  $(MAN8:man/%=$(DESTDIR)$(MANDIR)/man8/%)
	rm -f $(DATA:data/%=$(DESTDIR)$(DATADIR)/%) $(CONTRIB:contrib/%=$(DESTDIR)$(DATADIR)/%) \
	  $(DESTDIR)$(DATADIR)/grafana-securedgram.json
	@if [ -d $(DESTDIR)$(DATADIR) ]; then \
	  echo "rmdir $(DESTDIR)$(DATADIR)"; \
	  rmdir $(DESTDIR)$(DATADIR) || echo "uninstall: $(DESTDIR)$(DATADIR) is not empty: left in place" >&2; \
	fi

lint-man:
	@command -v $(MANDOC) >/dev/null 2>&1 || \
	  { echo "lint-man: $(MANDOC) not found: install mandoc (apt-get install mandoc)" >&2; exit 1; }
	@out=$$($(MANDOC) -T lint -W warning $(MANPAGES) 2>&1); rc=$$?; \
	  if [ $$rc -ne 0 ] || [ -n "$$out" ]; then \
	    printf '%s\n' "$$out" >&2; echo "lint-man: mandoc reported problems (exit $$rc)" >&2; exit 1; \
	  fi; \
	  echo "lint-man: $(words $(MANPAGES)) pages clean (mandoc -T lint -W warning)"
