// Signing in from a browser. A browser cannot put `Authorization: Bearer TOKEN` on a page it
// navigates to (nor on an EventSource), so with tokens required the dashboard would be out of
// reach. As Jupyter does: `/` without a valid token answers 401 with a small sign-in form; the
// form posts the token to `/login`, which checks it and sets it as an HttpOnly, SameSite=Strict
// cookie (Secure over HTTPS); every endpoint then accepts the cookie where it accepts the header.
// Every HTTP endpoint is GET but /login, and the cookie is never sent by another site's pages
// (SameSite=Strict), so the cookie adds no cross-site request risk.
//
// Plain string functions (no httplib types: those stay in http_server.cc). Thread-safe.
#ifndef ATTUNE_SERVER_HTTP_BROWSER_LOGIN_H_
#define ATTUNE_SERVER_HTTP_BROWSER_LOGIN_H_

#include <string>

namespace attune::http {

inline constexpr char kTokenCookie[] = "attune_token";

// The value of the attune_token cookie in a `Cookie:` header ("a=1; attune_token=T" -> "T");
// "" when there is none.
std::string TokenFromCookies(const std::string& cookie_header);

// The Set-Cookie value that signs a browser in with `token`.
std::string SessionCookie(const std::string& token, bool https);

// The sign-in page; `problem` (plain text, escaped here) is shown above the form when not empty.
std::string LoginPage(const std::string& problem);

}  // namespace attune::http

#endif  // ATTUNE_SERVER_HTTP_BROWSER_LOGIN_H_
