// A C++17 client of the jwtguard wrapper (jwtguard.hpp): checks Authorization header values
// the way the ping API does and prints one line per value.
//
//   export JWTGUARD_ISSUER=https://TENANT/ JWTGUARD_AUDIENCE=https://api.example.com
//   ./check SCOPE "Bearer eyJ..." - ...     (JWTGUARD_JWKS_URI optional: else discovered)
//
// An argument "-" stands for a request without an Authorization header. Each line is
// `200 sub=<sub> scope=<yes|no> exp=<exp> aud=<aud>` for a verified token, or
// `<HTTP status> <JSON code> <reason>` for a refused one. Exit 2 on a bad configuration.
//
// Build with pkg-config:  c++ -std=c++17 check.cpp $(pkg-config --cflags --libs jwtguard)
// or with CMake (CMakeLists.txt beside this file): find_package(jwtguard 0.1 REQUIRED).

#include <jwtguard.hpp>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

std::optional<std::string_view> env(const char *name) {
  const char *value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string_view(value);
}

jwtguard::Verifier make_verifier() {
  auto issuer = env("JWTGUARD_ISSUER");
  auto audience = env("JWTGUARD_AUDIENCE");
  if (!issuer || !audience) throw std::runtime_error("set JWTGUARD_ISSUER and JWTGUARD_AUDIENCE");
  jwtguard::Config config;
  config.issuer(*issuer).audience(*audience);
  if (auto uri = env("JWTGUARD_JWKS_URI")) config.jwks_uri(*uri);
  return jwtguard::Verifier(config);  // the configuration may go now: the verifier copied it
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 2) {
    std::cerr << "usage: check SCOPE [AUTHORIZATION | -]...\n";
    return 2;
  }
  std::string_view scope = argv[1];
  std::optional<jwtguard::Verifier> verifier;
  try {
    verifier.emplace(make_verifier());
  } catch (const std::exception &error) {
    std::cerr << "check: " << error.what() << "\n";
    return 2;
  }

  std::vector<jwtguard::Claims> kept;  // claims outlive their Verification (moved out)
  for (int i = 2; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::optional<std::string_view> header;
    if (arg != "-") header = arg;
    jwtguard::Verification result = verifier->verify_authorization(header);
    if (!result) {
      std::cout << result.http_status() << ' ' << result.code() << ' ' << result.reason() << '\n';
      continue;
    }
    jwtguard::Claims claims = result.take_claims();
    std::cout << "200 sub=" << claims.string("sub").value_or("-")
              << " scope=" << (claims.has_scope(scope) ? "yes" : "no")
              << " exp=" << static_cast<long long>(claims.number("exp").value_or(0))
              << " aud=" << claims.text("aud").value_or("-") << '\n';
    kept.push_back(std::move(claims));
  }
  // An empty view (data() may be NULL) is empty input, refused as such, never API misuse.
  if (verifier->verify(std::string_view{}).status() == JWT_STATUS_NULL_ARGUMENT) return 1;
  // The verifier goes first; the claims it produced stay readable.
  verifier.reset();
  for (const jwtguard::Claims &claims : kept) {
    if (claims.json().empty() || !claims.string("iss")) return 1;
  }
  std::cout << "kept " << kept.size() << " claims " << jwtguard::version() << '\n';
  return 0;
}
