// Correlation metrics for regression evaluation. Plain C++, thread-safe, no allocation beyond
// the rank vectors.
#ifndef ATTUNE_SERVER_ENGINE_STATS_H_
#define ATTUNE_SERVER_ENGINE_STATS_H_

#include <vector>

namespace attune::engine {

// Pearson's r of two equally long series; 0 when either has no variance or fewer than 2 points.
double Pearson(const std::vector<double>& x, const std::vector<double>& y);

// Spearman's rho: Pearson's r of the ranks, ties getting their average rank.
double Spearman(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_STATS_H_
