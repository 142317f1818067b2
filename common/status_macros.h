// Early-return helpers for absl::Status and absl::StatusOr.
//
// Debian's Abseil (20220623) has no status macros of its own. These two are the only ones the
// project uses:
//
//   RETURN_IF_ERROR(WriteFile(path, bytes));
//   ASSIGN_OR_RETURN(Tokenizer tok, Tokenizer::FromFile(path));
//
// Both evaluate their argument exactly once.
#ifndef ATTUNE_COMMON_STATUS_MACROS_H_
#define ATTUNE_COMMON_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define ATTUNE_CONCAT_INNER_(a, b) a##b
#define ATTUNE_CONCAT_(a, b) ATTUNE_CONCAT_INNER_(a, b)

// Returns the status from the enclosing function if `expr` is not OK.
#define RETURN_IF_ERROR(expr)                        \
  do {                                               \
    ::absl::Status attune_status_ = (expr);          \
    if (!attune_status_.ok()) return attune_status_; \
  } while (0)

// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status, otherwise moves the value
// into `lhs`, which may be a declaration ("auto x") or an existing variable.
#define ASSIGN_OR_RETURN(lhs, rexpr) \
  ATTUNE_ASSIGN_OR_RETURN_IMPL_(ATTUNE_CONCAT_(attune_statusor_, __LINE__), lhs, rexpr)

#define ATTUNE_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                  \
  if (!statusor.ok()) return std::move(statusor).status();  \
  lhs = std::move(statusor).value()

#endif  // ATTUNE_COMMON_STATUS_MACROS_H_
