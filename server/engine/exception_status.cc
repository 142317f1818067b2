#include "server/engine/exception_status.h"

#include <c10/util/Exception.h>

#include <exception>
#include <new>

#include "absl/strings/str_cat.h"

namespace attune::engine {

absl::Status StatusOfCurrentException(const std::string& context) {
  try {
    throw;
  } catch (const std::bad_alloc& e) {
    return absl::ResourceExhaustedError(absl::StrCat(context, ": out of memory: ", e.what()));
  } catch (const c10::OutOfMemoryError& e) {  // before c10::Error, its base
    return absl::ResourceExhaustedError(
        absl::StrCat(context, ": out of memory: ", e.what_without_backtrace()));
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat(context, ": ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(context, ": ", e.what()));
  } catch (...) {
    return absl::InternalError(absl::StrCat(context, ": an exception that is not std::exception"));
  }
}

}  // namespace attune::engine
