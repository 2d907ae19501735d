# jwtguard: thin wrappers. `make demo` and `make test` are the two commands a user runs on a
# fresh Debian 12 machine (as root: missing packages are installed); see README.md.

CARGO ?= cargo
RELEASE := $(CURDIR)/target/release
PYTHON := $(CURDIR)/.venv/bin/python
# The Python package straight from the source tree, on the freshly built library.
PYENV := JWTGUARD_LIBRARY=$(RELEASE)/libjwtguard.so JWTGUARD_BIN=$(RELEASE)/jwtguard \
	PYTHONPATH=$(CURDIR)/bindings/python/src

NGINX_BUILD := $(CURDIR)/target/nginx-build
NGINX_MODULE := $(RELEASE)/ngx_http_jwtguard_module.so

PING_SERVER := $(RELEASE)/ping_server

.PHONY: all deps build library install uninstall deb nginx-module install-nginx-module envoy-module c-ping-server demo test lint rust-test \
	python-test python-floor-test nginx-test envoy-test serve-test c-test nginx-asan-module asan nginx-asan-test header mutants bench bench-envoy bench-serve bench-python bench-report soak fuzz fuzz-smoke fuzz-cmin clean

all: build

# Debian packages and the Python venv (.venv) that demo and test need.
deps:
	@bash scripts/setup-env.sh

build: deps
	$(CARGO) build --release

# The nginx dynamic module against Debian's nginx-dev build tree, linking libjwtguard.a.
nginx-module: build
	rm -rf $(NGINX_BUILD) && cp -r /usr/share/nginx/src $(NGINX_BUILD)
	cd $(NGINX_BUILD) && ./configure --with-compat \
		--add-dynamic-module=$(CURDIR)/bindings/nginx >$(NGINX_BUILD)/configure.log
	$(MAKE) -C $(NGINX_BUILD) -f objs/Makefile modules >$(NGINX_BUILD)/make.log
	$(MAKE) -s install-nginx-module

# Shared objects are replaced atomically (written beside, then renamed): a running nginx keeps
# the old file's pages mapped, while overwriting it in place would crash every worker.
install-nginx-module:
	install -m 0755 $(NGINX_BUILD)/objs/ngx_http_jwtguard_module.so $(NGINX_MODULE).tmp
	mv -f $(NGINX_MODULE).tmp $(NGINX_MODULE)

# `make asan`: the same module built with -fsanitize=address,undefined in its own tree; Debian's
# nginx runs it with the ASan runtime preloaded (bindings/nginx/tests/conftest.py).
SANITIZE := -fsanitize=address,undefined -fno-omit-frame-pointer
ASAN_DIR := $(CURDIR)/target/asan
NGINX_ASAN_BUILD := $(CURDIR)/target/nginx-asan-build
NGINX_ASAN_MODULE := $(ASAN_DIR)/ngx_http_jwtguard_module.so
ASAN_PING_SERVER := $(ASAN_DIR)/ping_server

nginx-asan-module: build
	rm -rf $(NGINX_ASAN_BUILD) && cp -r /usr/share/nginx/src $(NGINX_ASAN_BUILD) && mkdir -p $(ASAN_DIR)
	cd $(NGINX_ASAN_BUILD) && ./configure --with-compat --with-cc-opt="$(SANITIZE) -g" \
		--with-ld-opt="$(SANITIZE)" --add-dynamic-module=$(CURDIR)/bindings/nginx >$(NGINX_ASAN_BUILD)/configure.log
	$(MAKE) -C $(NGINX_ASAN_BUILD) -f objs/Makefile modules >$(NGINX_ASAN_BUILD)/make.log
	$(MAKE) -s install-nginx-module NGINX_BUILD=$(NGINX_ASAN_BUILD) NGINX_MODULE=$(NGINX_ASAN_MODULE)

# The Envoy dynamic module (a workspace member: `build` makes it too), loaded by Envoy as
# jwtguard_envoy from ENVOY_DYNAMIC_MODULES_SEARCH_PATH=target/release.
# (Built with the whole workspace, not `-p`: one feature resolution, so the core is not
# rebuilt differently for it.)
envoy-module: build
	@test -f $(RELEASE)/libjwtguard_envoy.so

# The C ping server example on libmicrohttpd, linked against the shared library.
c-ping-server: build
	cc -std=c99 -Wall -Wextra -Werror -g -O1 -Iinclude bindings/c/examples/ping_server.c \
		-o $(PING_SERVER).tmp -L$(RELEASE) -Wl,-rpath,$(RELEASE) -ljwtguard -lmicrohttpd -pthread
	mv -f $(PING_SERVER).tmp $(PING_SERVER)

# `make install PREFIX=/usr/local DESTDIR=`: the C library as C libraries install —
# libjwtguard.so.X.Y.Z (SONAME libjwtguard.so.X) with its .so.X and .so links, libjwtguard.a,
# jwtguard.h and the C++17 wrapper jwtguard.hpp, a pkg-config file and a CMake package
# (jwtguard::jwtguard, jwtguard::static). `make uninstall` with the same variables removes
# exactly that. Builds the library first if needed (cargo only: no packages, no venv).
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
DESTDIR ?=
VERSION := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' Cargo.toml | head -n 1)
VERSION_MAJOR := $(word 1,$(subst ., ,$(VERSION)))
VERSION_MINOR := $(word 2,$(subst ., ,$(VERSION)))
# The pkg-config file names its directories under ${prefix} where it can (relocatable with
# pkg-config --define-prefix).
PC_LIBDIR := $(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))
PC_INCLUDEDIR := $(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))
SIZEOF_VOID_P := $(shell echo $$(( $$(getconf LONG_BIT) / 8 )))
SUBST := sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
	-e 's|@PC_LIBDIR@|$(PC_LIBDIR)|g' -e 's|@PC_INCLUDEDIR@|$(PC_INCLUDEDIR)|g' \
	-e 's|@SIZEOF_VOID_P@|$(SIZEOF_VOID_P)|g' -e 's|@VERSION@|$(VERSION)|g' \
	-e 's|@VERSION_MAJOR@|$(VERSION_MAJOR)|g' -e 's|@VERSION_MINOR@|$(VERSION_MINOR)|g'
INSTALLED_FILES := $(LIBDIR)/libjwtguard.so.$(VERSION) $(LIBDIR)/libjwtguard.so.$(VERSION_MAJOR) \
	$(LIBDIR)/libjwtguard.so $(LIBDIR)/libjwtguard.a $(INCLUDEDIR)/jwtguard.h $(INCLUDEDIR)/jwtguard.hpp \
	$(LIBDIR)/pkgconfig/jwtguard.pc $(LIBDIR)/cmake/jwtguard/jwtguardConfig.cmake \
	$(LIBDIR)/cmake/jwtguard/jwtguardConfigVersion.cmake

library:
	$(CARGO) build --release

install: library
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(LIBDIR)/cmake/jwtguard $(DESTDIR)$(INCLUDEDIR)
	install -m 0755 $(RELEASE)/libjwtguard.so $(DESTDIR)$(LIBDIR)/libjwtguard.so.$(VERSION)
	ln -sfn libjwtguard.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libjwtguard.so.$(VERSION_MAJOR)
	ln -sfn libjwtguard.so.$(VERSION_MAJOR) $(DESTDIR)$(LIBDIR)/libjwtguard.so
	install -m 0644 $(RELEASE)/libjwtguard.a $(DESTDIR)$(LIBDIR)/libjwtguard.a
	strip --strip-debug $(DESTDIR)$(LIBDIR)/libjwtguard.a
	install -m 0644 include/jwtguard.h include/jwtguard.hpp $(DESTDIR)$(INCLUDEDIR)/
	$(SUBST) packaging/jwtguard.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/jwtguard.pc
	$(SUBST) packaging/jwtguardConfig.cmake.in > $(DESTDIR)$(LIBDIR)/cmake/jwtguard/jwtguardConfig.cmake
	$(SUBST) packaging/jwtguardConfigVersion.cmake.in \
		> $(DESTDIR)$(LIBDIR)/cmake/jwtguard/jwtguardConfigVersion.cmake
	@# Into the system directly (no DESTDIR), as root: refresh the dynamic linker's cache.
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then ldconfig; fi

# Every 0.x.y of the same major version, not only this one (an older install's real file).
uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED_FILES)) \
		$(wildcard $(DESTDIR)$(LIBDIR)/libjwtguard.so.$(VERSION_MAJOR).*)
	rmdir $(DESTDIR)$(LIBDIR)/cmake/jwtguard 2>/dev/null || true
	@# As install: from the system (no DESTDIR), as root, the linker cache forgets the library.
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then ldconfig; fi

# `make deb`: Debian packages built with debhelper — libjwtguard0 (the shared library),
# libjwtguard-dev (headers, static library, pkg-config, CMake) and libnginx-mod-http-jwtguard
# (the module in /usr/lib/nginx/modules with its modules-available snippet and a dependency on
# the nginx ABI it was built for: dh_nginx and the nginx_mod build system from nginx-dev).
# Into target/deb/*.deb. packaging/debian/rules says how.
DEB_DIR := $(CURDIR)/target/deb
DEB_TREE := $(DEB_DIR)/jwtguard-$(VERSION)
deb: library
	@bash scripts/setup-env.sh
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_TREE)/target/release $(DEB_TREE)/bindings/nginx
	cp -r packaging/debian $(DEB_TREE)/debian
	sed -e 's|@VERSION@|$(VERSION)|g' packaging/debian/changelog.in > $(DEB_TREE)/debian/changelog
	rm $(DEB_TREE)/debian/changelog.in
	cp bindings/nginx/config bindings/nginx/ngx_http_jwtguard_module.c $(DEB_TREE)/bindings/nginx/
	cp -r include $(DEB_TREE)/include
	cp $(RELEASE)/libjwtguard.a $(DEB_TREE)/target/release/
	$(MAKE) -s install DESTDIR=$(DEB_TREE)/stage PREFIX=/usr \
		LIBDIR=/usr/lib/$$(dpkg-architecture -qDEB_HOST_MULTIARCH)
	cd $(DEB_TREE) && dpkg-buildpackage -b -us -uc >$(DEB_DIR)/build.log 2>&1 \
		|| { tail -n 40 $(DEB_DIR)/build.log; exit 1; }
	ls $(DEB_DIR)/*.deb

# The ping API end to end: dev issuer + Flask API on loopback, a table of answers.
demo: build nginx-module envoy-module c-ping-server
	JWTGUARD_NGINX_MODULE=$(NGINX_MODULE) JWTGUARD_PING_SERVER=$(PING_SERVER) \
		$(PYENV) $(PYTHON) bindings/python/examples/flask_api/demo.py

# Everything: formatting, lints, Rust unit and integration tests (Wycheproof vectors, the
# pipeline, JWKS over loopback, the dev issuer, CLI, TLS), header drift, the C clients under
# valgrind, and the Python suite (ctypes, Flask, the example API as a server, a wheel).
test: deps lint rust-test python-test nginx-test nginx-asan-test envoy-test serve-test c-test fuzz-smoke

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

rust-test:
	if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --no-fail-fast; \
	else \
		$(CARGO) test --no-fail-fast; \
	fi
	$(CARGO) test --doc

# Under Python's debug allocator and development mode; the suite checks the library's own
# leak counters at exit (tests/conftest.py).
# The C ping server answers DPoP calls beside the Python hosts (test_dpop.py). Then the
# framework tests on the oldest versions declared (python-floor-test).
python-test: build c-ping-server
	JWTGUARD_PING_SERVER=$(PING_SERVER) $(PYENV) PYTHONMALLOC=debug $(PYTHON) -X dev -m pytest -q bindings/python/tests
	@$(MAKE) --no-print-directory python-floor-test

# Each integration's own tests (bindings/python/tests/test_NAME.py) on the oldest version of its
# framework that bindings/python/pyproject.toml declares, in its own venv .venv-floor/NAME
# (bindings/python/floor/NAME.txt, made once by bindings/python/floor/setup.sh): a declared
# range is a tested range. Every floor runs; the target fails if any did.
FLOORS := flask fastapi django
python-floor-test: build
	@bash bindings/python/floor/setup.sh $(FLOORS)
	@failed=; for name in $(FLOORS); do \
		echo "python-floor-test: $$name:" $$(grep '==' bindings/python/floor/$$name.txt); \
		$(PYENV) PYTHONMALLOC=debug .venv-floor/$$name/bin/python -X dev -m pytest -q -p no:cacheprovider \
			bindings/python/tests/test_$$name.py || failed="$$failed $$name"; \
	done; \
	if [ -n "$$failed" ]; then echo "python-floor-test: failed on$$failed" >&2; exit 1; fi

nginx-test: nginx-module c-ping-server
	JWTGUARD_NGINX_MODULE=$(NGINX_MODULE) JWTGUARD_PING_SERVER=$(PING_SERVER) $(PYENV) $(PYTHON) -m pytest -q bindings/nginx/tests

# `jwtguard serve` (forward auth) directly over HTTP, then behind nginx auth_request, Envoy
# ext_authz and Caddy forward_auth, answering like the other hosts.
serve-test: build c-ping-server
	JWTGUARD_PING_SERVER=$(PING_SERVER) $(PYENV) $(PYTHON) -m pytest -q bindings/proxies/tests

envoy-test: envoy-module
	JWTGUARD_ENVOY_MODULE_DIR=$(RELEASE) $(PYENV) $(PYTHON) -m pytest -q bindings/envoy/tests

c-test: c-ping-server
	JWTGUARD_PING_SERVER=$(PING_SERVER) $(PYENV) $(PYTHON) -m pytest -q bindings/c/tests

# Sanitizers on the native hosts, every report fatal: the C client (tests/c_api.rs) and the C
# ping server suite (bindings/c/tests) under ASan + UBSan (both also run under valgrind), the
# nginx suite on the ASan module (with an ASan ping server beside it), and the Envoy module
# under valgrind inside Envoy (ASan cannot run in that binary). All of it is in `make test`.
asan: nginx-asan-module c-ping-server envoy-module
	$(CARGO) test --release --test c_api -- c_client_passes_under_asan_and_ubsan
	JWTGUARD_PING_SERVER=$(PING_SERVER) $(PYENV) $(PYTHON) -m pytest -q bindings/c/tests -k asan
	JWTGUARD_ENVOY_MODULE_DIR=$(RELEASE) $(PYENV) $(PYTHON) -m pytest -q bindings/envoy/tests -k valgrind
	$(MAKE) -s nginx-asan-test

# Every nginx test but the worker-memory one: ASan's quarantine keeps freed memory on purpose
# (hundreds of MB), so flat RSS is checked in the plain nginx-test only.
nginx-asan-test: nginx-asan-module
	mkdir -p $(ASAN_DIR)
	cc -std=c99 -Wall -Wextra -Werror -g -O1 $(SANITIZE) -Iinclude bindings/c/examples/ping_server.c \
		-o $(ASAN_PING_SERVER) -L$(RELEASE) -Wl,-rpath,$(RELEASE) -ljwtguard -lmicrohttpd -pthread
	rm -rf $(ASAN_DIR)/reports
	JWTGUARD_NGINX_MODULE=$(NGINX_ASAN_MODULE) JWTGUARD_NGINX_BUILD=$(NGINX_ASAN_BUILD) \
		JWTGUARD_NGINX_SANITIZER_LOGS=$(ASAN_DIR)/reports JWTGUARD_PING_SERVER=$(ASAN_PING_SERVER) \
		$(PYENV) $(PYTHON) -m pytest -q bindings/nginx/tests \
		--deselect bindings/nginx/tests/test_nginx.py::test_worker_memory_is_flat_and_wrk_figures

# Mutation testing of the decision path (cargo-mutants, installed on first use): every mutant
# of these files must fail a Rust test. Slow (each mutant is a build and a test run), so not
# part of `make test`; MUTANTS_ARGS passes more (`--shard 1/8`, `--in-diff FILE`, `--re NAME`).
# The C clients under valgrind and ASan are left out: the Rust tests decide for a mutant.
# Results in mutants.out/ (caught.txt, missed.txt, unviable.txt, timeout.txt).
MUTANTS_FILES := src/token.rs src/claims.rs src/policy.rs src/verify.rs src/dpop.rs \
	src/token_cache.rs src/jwks/keyset.rs src/answer.rs
# The tests' dev issuer is the built CLI (JWTGUARD_BIN): cargo-mutants builds only the core.
mutants: build
	@$(CARGO) mutants --version >/dev/null 2>&1 || $(CARGO) install --locked cargo-mutants
	JWTGUARD_BIN=$(RELEASE)/jwtguard $(CARGO) mutants --package jwtguard --test-tool=nextest --no-shuffle \
		$(addprefix --file ,$(MUTANTS_FILES)) $(MUTANTS_ARGS) -- -E 'not test(/valgrind|asan/)'

# Regenerate include/jwtguard.h from the sources (commit the result).
header:
	JWTGUARD_BLESS=1 $(CARGO) test --test header

bench:
	$(CARGO) bench --bench verify
	openssl speed -seconds 2 rsa2048 ecdsap256 ed25519

# Envoy: no auth, jwt_authn (without and with its token cache) and jwtguard, interleaved.
bench-envoy: envoy-module
	$(PYENV) $(PYTHON) bindings/envoy/bench/compare.py

bench-python: build
	$(PYENV) $(PYTHON) bindings/python/bench/compare.py

# Every comparison in one run (C, Python, nginx, Envoy, Flask): target/bench/report.md and
# PNG charts. Installs libjwt-dev and bench/requirements.txt first. Not part of `make test`.
bench-report: build nginx-module envoy-module
	scripts/setup-bench.sh
	$(PYENV) $(PYTHON) bench/report.py

# A soak (bench/soak.py): nginx, the C ping server and Envoy under wrk load with valid tokens
# while the dev issuer rotates keys every 30 s and fails in every way in turn and nginx
# reloads every 60 s; fails if one valid token is refused. target/soak/: results.json,
# summary.md, soak.png. Not part of `make test`.
SOAK_SECONDS ?= 600
# Checks/s of `jwtguard serve` on one core (README "Forward auth").
bench-serve: build
	bench/serve.sh

soak: build nginx-module envoy-module c-ping-server
	scripts/setup-bench.sh
	SOAK_SECONDS=$(SOAK_SECONDS) JWTGUARD_NGINX_MODULE=$(NGINX_MODULE) JWTGUARD_PING_SERVER=$(PING_SERVER) \
		JWTGUARD_ENVOY_MODULE_DIR=$(RELEASE) $(PYENV) $(PYTHON) bench/soak.py

# Coverage-guided fuzzing (fuzz/, cargo-fuzz, address sanitizer): every target FUZZ_SECONDS
# seconds, executions and coverage printed per target. `make test` runs a 10 s smoke of each.
FUZZ_SECONDS ?= 60
fuzz: deps
	scripts/fuzz.sh $(FUZZ_SECONDS)

fuzz-smoke: deps
	scripts/fuzz.sh 10

# After a long run: the working corpus minimized into fuzz/corpus/ (commit it).
fuzz-cmin: deps
	scripts/fuzz.sh cmin

clean:
	$(CARGO) clean
	rm -rf .venv .venv-floor bindings/python/build bindings/python/src/*.egg-info
