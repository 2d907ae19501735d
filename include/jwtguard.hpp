/*
 * jwtguard.hpp: a header-only C++17 wrapper over the jwtguard C ABI (jwtguard.h).
 *
 *   jwtguard::Verifier verifier(jwtguard::Config()
 *                                   .issuer("https://TENANT/")
 *                                   .audience("https://api.example.com")
 *                                   .jwks_uri("https://TENANT/.well-known/jwks.json"));
 *   jwtguard::Verification v = verifier.verify_authorization(authorization_header);
 *   if (!v) return answer(v.http_status(), v.code(), v.description());
 *   if (!v.claims().has_scope("read:messages")) ...;
 *   std::optional<std::string_view> sub = v.claims().string("sub");
 *
 * Errors: a refused token is an expected outcome on a server's hot path, so verification never
 * throws and never allocates beyond the library itself: it returns a `Verification` (the
 * claims, or the status saying why not). Building a configuration or a verifier can only fail
 * on a programming or configuration error, found once at start: those throw `jwtguard::Error`
 * (a `std::runtime_error` carrying the status), which keeps the RAII handles always valid.
 * Claims accessors return `std::optional`: empty when the claim is absent or of another type.
 *
 * Handles are move-only and free themselves. A `Verifier` may be used by many threads at once;
 * claims stay valid after their verifier is gone. Strings in are `std::string_view` (no NUL
 * needed); `string()` and `json()` views borrow from their `Claims`.
 */
#ifndef JWTGUARD_HPP
#define JWTGUARD_HPP

#include "jwtguard.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace jwtguard {

/// The stable snake_case name of a status (`"token_expired"`), as in every binding.
inline std::string_view reason(jwt_status status) noexcept { return jwt_status_reason(status); }

/// A human description of a status.
inline std::string_view description(jwt_status status) noexcept { return jwt_status_description(status); }

/// The library's version, e.g. `"0.1.0"`.
inline std::string_view version() noexcept { return jwt_version(); }

/// A configuration or verifier that could not be built (or another API misuse).
class Error : public std::runtime_error {
 public:
  explicit Error(jwt_status status, std::string_view what)
      : std::runtime_error(std::string(what) + ": " + jwt_status_reason(status) + " (" +
                           jwt_status_description(status) + ")"),
        status_(status) {}

  jwt_status status() const noexcept { return status_; }
  std::string_view reason() const noexcept { return jwt_status_reason(status_); }

 private:
  jwt_status status_;
};

namespace detail {
/// A view's bytes for the C ABI, which refuses NULL even with a length of 0: an empty view
/// (whose data() may be NULL) is passed as "", so it is judged as empty input, not misuse.
inline const char *data(std::string_view view) noexcept { return view.data() ? view.data() : ""; }

inline void check(jwt_status status, std::string_view what) {
  if (status != JWT_STATUS_OK) throw Error(status, what);
}
}  // namespace detail

/// A verified token's claims (payload and header). Move-only; frees its handle.
class Claims {
 public:
  Claims() noexcept = default;
  explicit Claims(jwt_claims *handle) noexcept : handle_(handle) {}
  Claims(Claims &&other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  Claims &operator=(Claims &&other) noexcept {
    if (this != &other) {
      jwt_claims_free(handle_);
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  Claims(const Claims &) = delete;
  Claims &operator=(const Claims &) = delete;
  ~Claims() { jwt_claims_free(handle_); }

  /// Whether there are claims (false for a default-constructed or moved-from object).
  explicit operator bool() const noexcept { return handle_ != nullptr; }

  /// Whether the token grants `scope` (`scope`, `scp` or `permissions`; exact match).
  bool has_scope(std::string_view scope) const noexcept {
    return jwt_has_scope(handle_, detail::data(scope), scope.size());
  }

  /// A string claim, borrowed from these claims; empty if absent or not a string.
  std::optional<std::string_view> string(std::string_view name) const &noexcept {
    const char *value = nullptr;
    std::size_t length = 0;
    if (jwt_claims_get_string(handle_, detail::data(name), name.size(), &value, &length) != JWT_STATUS_OK)
      return std::nullopt;
    return std::string_view(value, length);
  }

  /// A numeric claim (`exp`, `iat`, ...); empty if absent or not a number.
  std::optional<double> number(std::string_view name) const noexcept {
    double value = 0;
    if (jwt_claims_get_number(handle_, detail::data(name), name.size(), &value) != JWT_STATUS_OK)
      return std::nullopt;
    return value;
  }

  /// Any claim as text: a string as is, a number or boolean as JSON, an array joined by
  /// spaces, an object as JSON. May hold control characters: see `header_text`.
  std::optional<std::string> text(std::string_view name) const { return copy(name, jwt_claims_get_text); }

  /// As `text`, with control characters and the backslash escaped: safe in an HTTP header.
  std::optional<std::string> header_text(std::string_view name) const {
    return copy(name, jwt_claims_get_header_text);
  }

  /// Not on a temporary: the view would outlive the claims.
  std::optional<std::string_view> string(std::string_view name) const && = delete;

  /// The whole payload as the issuer signed it (JSON), borrowed from these claims.
  std::string_view json() const &noexcept {
    const char *text = nullptr;
    std::size_t length = 0;
    if (jwt_claims_json(handle_, &text, &length) != JWT_STATUS_OK) return {};
    return std::string_view(text, length);
  }

  /// Not on a temporary: the view would outlive the claims.
  std::string_view json() const && = delete;

  jwt_claims *get() const noexcept { return handle_; }

 private:
  using TextFn = jwt_status (*)(const jwt_claims *, const char *, std::size_t, char *, std::size_t,
                                std::size_t *);

  std::optional<std::string> copy(std::string_view name, TextFn fn) const {
    // Asked with no buffer, the library answers "too small" with the length it needs; any
    // other answer means absent (or a NULL handle).
    std::size_t needed = 0;
    if (fn(handle_, detail::data(name), name.size(), nullptr, 0, &needed) != JWT_STATUS_INVALID_ARGUMENT)
      return std::nullopt;
    std::string out(needed + 1, '\0');
    if (fn(handle_, detail::data(name), name.size(), out.data(), out.size(), &needed) != JWT_STATUS_OK)
      return std::nullopt;  // a name that is not UTF-8
    out.resize(needed);
    return out;
  }

  jwt_claims *handle_ = nullptr;
};

/// The outcome of a verification: the claims, or the status that says why the token was
/// refused (with what a server answers: HTTP status, JSON code, RFC 6750 error).
class Verification {
 public:
  Verification(jwt_status status, Claims claims) noexcept : status_(status), claims_(std::move(claims)) {}

  bool ok() const noexcept { return status_ == JWT_STATUS_OK; }
  explicit operator bool() const noexcept { return ok(); }
  jwt_status status() const noexcept { return status_; }
  std::string_view reason() const noexcept { return jwt_status_reason(status_); }
  std::string_view description() const noexcept { return jwt_status_description(status_); }
  /// The Auth0 quickstart's JSON `code` (`"token_expired"`, `"invalid_header"`, ...).
  std::string_view code() const noexcept { return jwt_status_code(status_); }
  /// The RFC 6750 `error` for `WWW-Authenticate`, or empty when none applies.
  std::string_view rfc6750_error() const noexcept { return jwt_status_rfc6750_error(status_); }
  int http_status() const noexcept { return jwt_status_http_status(status_); }

  /// The claims of a verified token. Throws `Error` when the token was refused.
  const Claims &claims() const & {
    if (!ok()) throw Error(status_, "jwtguard: no claims, the token was refused");
    return claims_;
  }
  /// Not on a temporary: the claims would die with it (use `take_claims`).
  const Claims &claims() const && = delete;
  /// The claims moved out (the `Verification` keeps none). Throws `Error` when refused.
  Claims take_claims() {
    if (!ok()) throw Error(status_, "jwtguard: no claims, the token was refused");
    return std::move(claims_);
  }

 private:
  jwt_status status_;
  Claims claims_;
};

/// A verifier configuration (a builder: each setter returns `*this`). Setters throw `Error`
/// on an invalid value (an unknown algorithm name, an empty issuer, ...).
class Config {
 public:
  Config() : handle_(jwt_config_new()) {
    if (handle_ == nullptr) throw Error(JWT_STATUS_INTERNAL, "jwtguard: jwt_config_new");
  }
  Config(Config &&other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  Config &operator=(Config &&other) noexcept {
    if (this != &other) {
      jwt_config_free(handle_);
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  Config(const Config &) = delete;
  Config &operator=(const Config &) = delete;
  ~Config() { jwt_config_free(handle_); }

  Config &issuer(std::string_view value) {
    detail::check(jwt_config_add_issuer(handle_, detail::data(value), value.size()), "jwtguard: issuer");
    return *this;
  }
  Config &audience(std::string_view value) {
    detail::check(jwt_config_add_audience(handle_, detail::data(value), value.size()), "jwtguard: audience");
    return *this;
  }
  /// Adds an accepted algorithm (the first call replaces the default `RS256`).
  Config &algorithm(std::string_view name) {
    detail::check(jwt_config_add_algorithm(handle_, detail::data(name), name.size()), "jwtguard: algorithm");
    return *this;
  }
  Config &leeway(std::uint64_t seconds) {
    detail::check(jwt_config_set_leeway(handle_, seconds), "jwtguard: leeway");
    return *this;
  }
  Config &required_claim(std::string_view name) {
    detail::check(jwt_config_add_required_claim(handle_, detail::data(name), name.size()), "jwtguard: required claim");
    return *this;
  }
  Config &strict(bool on) {
    detail::check(jwt_config_set_strict(handle_, on), "jwtguard: strict");
    return *this;
  }
  Config &jwks_uri(std::string_view uri) {
    detail::check(jwt_config_set_jwks_uri(handle_, detail::data(uri), uri.size()), "jwtguard: jwks_uri");
    return *this;
  }
  Config &jwks_json(std::string_view json) {
    detail::check(jwt_config_set_jwks_json(handle_, detail::data(json), json.size()), "jwtguard: jwks_json");
    return *this;
  }
  Config &jwks_file(std::string_view path) {
    detail::check(jwt_config_set_jwks_file(handle_, detail::data(path), path.size()), "jwtguard: jwks_file");
    return *this;
  }
  Config &allow_insecure_http(bool allow) {
    detail::check(jwt_config_set_allow_insecure_http(handle_, allow), "jwtguard: allow_insecure_http");
    return *this;
  }
  /// Verified tokens kept (0 disables the token cache).
  Config &token_cache(std::uint64_t max_entries) {
    detail::check(jwt_config_set_token_cache(handle_, max_entries), "jwtguard: token_cache");
    return *this;
  }
  Config &non_blocking(bool on) {
    detail::check(jwt_config_set_non_blocking(handle_, on), "jwtguard: non_blocking");
    return *this;
  }
  Config &ca_file(std::string_view path) {
    detail::check(jwt_config_set_ca_file(handle_, detail::data(path), path.size()), "jwtguard: ca_file");
    return *this;
  }
  /// Another issuer with its own keys and policy (copied in: `other` may go away after).
  Config &add_issuer(const Config &other) {
    detail::check(jwt_config_add_issuer_config(handle_, other.handle_), "jwtguard: add_issuer");
    return *this;
  }

  /// The C handle, for the setters this wrapper does not name (cache policy, snapshot, ...).
  jwt_config *get() const noexcept { return handle_; }

 private:
  jwt_config *handle_;
};

/// A verifier: thread-safe, move-only, frees its handle.
class Verifier {
 public:
  /// Builds a verifier (never touches the network). Throws `Error` on an invalid configuration.
  explicit Verifier(const Config &config) {
    detail::check(jwt_verifier_new(config.get(), &handle_), "jwtguard: verifier");
  }
  Verifier(Verifier &&other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  Verifier &operator=(Verifier &&other) noexcept {
    if (this != &other) {
      jwt_verifier_free(handle_);
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  Verifier(const Verifier &) = delete;
  Verifier &operator=(const Verifier &) = delete;
  ~Verifier() { jwt_verifier_free(handle_); }

  /// Verifies a compact JWT.
  Verification verify(std::string_view token) const noexcept {
    jwt_claims *claims = nullptr;
    jwt_status status = jwt_verify(handle_, detail::data(token), token.size(), &claims);
    return Verification(status, Claims(claims));
  }

  /// Verifies the token in an `Authorization` header value (`"Bearer <token>"`); pass
  /// `std::nullopt` when the request had no such header (`token_missing`).
  Verification verify_authorization(std::optional<std::string_view> header) const noexcept {
    jwt_claims *claims = nullptr;
    jwt_status status = header ? jwt_verify_authorization(handle_, detail::data(*header), header->size(), &claims)
                               : jwt_verify_authorization(handle_, nullptr, 0, &claims);
    return Verification(status, Claims(claims));
  }

  /// The verdict alone, without claims.
  jwt_status check(std::string_view token) const noexcept {
    return jwt_verify_status(handle_, detail::data(token), token.size());
  }

  /// Fetches the keys now and waits (`JWT_STATUS_KEYS_UNAVAILABLE` when the fetch failed).
  jwt_status refresh() const noexcept { return jwt_verifier_refresh(handle_); }
  /// Starts fetching the keys in the background if missing or due.
  jwt_status prefetch() const noexcept { return jwt_verifier_prefetch(handle_); }
  bool fetching() const noexcept { return jwt_verifier_fetching(handle_); }
  /// Fetches ended so far: an event-loop host reads it before verifying, and retries a
  /// refusal for want of keys when a fetch runs or this moved (see jwtguard.h).
  std::uint64_t fetch_epoch() const noexcept { return jwt_verifier_fetch_epoch(handle_); }
  std::uint64_t count(jwt_counter counter) const noexcept { return jwt_verifier_count(handle_, counter); }
  std::uint64_t count_status(jwt_status status) const noexcept {
    return jwt_verifier_count_status(handle_, status);
  }

  jwt_verifier *get() const noexcept { return handle_; }

 private:
  jwt_verifier *handle_ = nullptr;
};

}  // namespace jwtguard

#endif  // JWTGUARD_HPP
