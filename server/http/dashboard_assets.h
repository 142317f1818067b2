// The dashboard's files (HTML, JavaScript, CSS under server/http/dashboard/), embedded into the
// binary at build time so `attuned` serves the page with nothing else installed.
//
// The definitions are generated: embed_assets.cmake turns each file into a byte array in
// dashboard_assets.cc in the build directory. Edit the files in dashboard/, not the generated
// source.
#ifndef ATTUNE_SERVER_HTTP_DASHBOARD_ASSETS_H_
#define ATTUNE_SERVER_HTTP_DASHBOARD_ASSETS_H_

#include <cstddef>
#include <string_view>

namespace attune::http {

struct DashboardAsset {
  const char* path;          // "/index.html", "/app.js", ...
  const char* content_type;  // e.g. "text/html; charset=utf-8"
  const unsigned char* data;
  std::size_t size;
};

// The asset served at `path` ("/index.html"), or nullptr when there is none. The returned
// object is static. Thread-safe.
const DashboardAsset* FindDashboardAsset(std::string_view path);

}  // namespace attune::http

#endif  // ATTUNE_SERVER_HTTP_DASHBOARD_ASSETS_H_
