# jwtguard: thin wrappers over cargo. `make demo` and `make test` are the two commands a user
# runs; see README.md.

CARGO ?= cargo

.PHONY: all build demo test lint header bench clean

all: build

build:
	$(CARGO) build --release

# The ping API end to end against a local issuer arrives with the Python issue (see README).
demo: build
	@echo "make demo: coming. The ping API demo (Flask app + nginx module against"
	@echo "'jwtguard dev-issuer') lands with the Python and native-server issues."
	@echo "Until then, verify a token with the CLI:"
	@echo "  target/release/jwtguard verify --issuer https://TENANT/ --audience API --jwks-uri https://TENANT/.well-known/jwks.json TOKEN"

# Everything: formatting, lints, Rust unit and integration tests (Wycheproof vectors, the
# pipeline, JWKS over loopback, CLI), header drift, and the C client under valgrind.
test: lint
	if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --no-fail-fast; \
	else \
		$(CARGO) test --no-fail-fast; \
	fi
	$(CARGO) test --doc

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

# Regenerate include/jwtguard.h from the sources (commit the result).
header:
	JWTGUARD_BLESS=1 $(CARGO) test --test header

bench:
	$(CARGO) bench --bench verify
	openssl speed -seconds 2 rsa2048 ecdsap256 ed25519

clean:
	$(CARGO) clean
