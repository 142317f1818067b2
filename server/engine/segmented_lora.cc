#include "server/engine/segmented_lora.h"

#include <algorithm>

namespace attune::engine {
namespace {

thread_local const AdapterGroup* active_group = nullptr;

bool HasLora(const AdaptedLinearImpl* site) { return site->kind() == AdapterKind::kLora; }

// Each member's adapter input: its rows of `x`, through its own dropout in training.
std::vector<torch::Tensor> AdapterInputs(const torch::Tensor& x, const std::vector<int64_t>& rows,
                                         const std::vector<const AdaptedLinearImpl*>& sites,
                                         bool training) {
  std::vector<torch::Tensor> inputs;
  int64_t begin = 0;
  for (size_t j = 0; j < rows.size(); ++j) {
    torch::Tensor h = x.narrow(0, begin, rows[j]);
    if (training && HasLora(sites[j]) && sites[j]->dropout() > 0) {
      h = torch::dropout(h, sites[j]->dropout(), /*train=*/true);
    }
    inputs.push_back(h);
    begin += rows[j];
  }
  return inputs;
}

// Equal row counts: one batched GEMM pair over the members, adapters padded to the largest rank.
// `x` is the members' inputs in one tensor when none was dropped out (a view then, no copy).
torch::Tensor BatchedDelta(const torch::Tensor& x, const std::vector<torch::Tensor>& inputs,
                           const std::vector<const AdaptedLinearImpl*>& sites, int64_t rank,
                           const torch::Tensor& y) {
  const auto dtype = inputs[0].scalar_type();
  const int64_t in = inputs[0].size(-1);
  const int64_t out = y.size(-1);
  const auto options = inputs[0].options();
  std::vector<torch::Tensor> a_list, b_list, scales;
  for (const AdaptedLinearImpl* site : sites) {
    if (!HasLora(site)) {
      a_list.push_back(torch::zeros({rank, in}, options));
      b_list.push_back(torch::zeros({out, rank}, options));
      scales.push_back(torch::zeros({1}, options.dtype(torch::kFloat32)));
      continue;
    }
    const int64_t pad = rank - site->lora_a().size(0);
    a_list.push_back(torch::constant_pad_nd(site->lora_a().to(dtype), {0, 0, 0, pad}));
    b_list.push_back(torch::constant_pad_nd(site->lora_b().to(dtype), {0, pad}));
    scales.push_back(torch::full({1}, site->scale(), options.dtype(torch::kFloat32)));
  }
  const int64_t members = static_cast<int64_t>(sites.size());
  torch::Tensor h = (x.defined() ? x : torch::stack(inputs)).reshape({members, -1, in});
  torch::Tensor mid = torch::bmm(h, torch::stack(a_list).transpose(1, 2));
  torch::Tensor delta = torch::bmm(mid, torch::stack(b_list).transpose(1, 2));
  delta = delta * torch::cat(scales).to(dtype).view({members, 1, 1});
  return delta.reshape(y.sizes());
}

// Different row counts: each member's pair of GEMMs on its rows (zeros without an adapter).
torch::Tensor LoopedDelta(const std::vector<torch::Tensor>& inputs,
                          const std::vector<const AdaptedLinearImpl*>& sites,
                          const torch::Tensor& y, const std::vector<int64_t>& rows) {
  std::vector<torch::Tensor> deltas;
  int64_t begin = 0;
  for (size_t j = 0; j < sites.size(); ++j) {
    const torch::Tensor& h = inputs[j];
    if (HasLora(sites[j])) {
      const auto dtype = h.scalar_type();
      deltas.push_back(torch::linear(torch::linear(h, sites[j]->lora_a().to(dtype)),
                                     sites[j]->lora_b().to(dtype)) *
                       sites[j]->scale());
    } else {
      deltas.push_back(torch::zeros_like(y.narrow(0, begin, rows[j])));
    }
    begin += rows[j];
  }
  return torch::cat(deltas, 0);
}

}  // namespace

AdapterGroup MatchProjections(const std::vector<Model*>& models, const std::vector<int64_t>& rows) {
  AdapterGroup group;
  group.rows = rows;
  const std::vector<AdaptedLinearImpl*> driver = models[0]->Projections();
  for (size_t i = 0; i < driver.size(); ++i) {
    std::vector<const AdaptedLinearImpl*>& sites = group.sites[driver[i]];
    for (Model* model : models) sites.push_back(model->Projections()[i]);
  }
  return group;
}

AdapterGroupScope::AdapterGroupScope(const AdapterGroup* group) : previous_(active_group) {
  active_group = group;
}

AdapterGroupScope::~AdapterGroupScope() { active_group = previous_; }

const AdapterGroup* ActiveAdapterGroup() { return active_group; }

const std::vector<const AdaptedLinearImpl*>* ActiveGroupSites(const AdaptedLinearImpl* driver) {
  if (active_group == nullptr) return nullptr;
  auto it = active_group->sites.find(driver);
  return it == active_group->sites.end() ? nullptr : &it->second;
}

torch::Tensor AddGroupAdapters(const torch::Tensor& x, const torch::Tensor& y,
                               const std::vector<int64_t>& rows,
                               const std::vector<const AdaptedLinearImpl*>& sites, bool training) {
  int64_t rank = 0;
  for (const AdaptedLinearImpl* site : sites) {
    if (HasLora(site)) rank = std::max(rank, site->lora_a().size(0));
  }
  if (rank == 0) return y;  // no member adapts this projection
  const std::vector<torch::Tensor> inputs = AdapterInputs(x, rows, sites, training);
  const bool dropped = training && std::any_of(sites.begin(), sites.end(), [](const auto* s) {
                         return HasLora(s) && s->dropout() > 0;
                       });
  const bool equal_rows =
      std::all_of(rows.begin(), rows.end(), [&](int64_t r) { return r == rows[0]; });
  if (!equal_rows) return y + LoopedDelta(inputs, sites, y, rows).to(y.scalar_type());
  const torch::Tensor whole = dropped ? torch::Tensor() : x.contiguous();
  const torch::Tensor delta = BatchedDelta(whole, inputs, sites, rank, y);
  return y + delta.to(y.scalar_type());
}

}  // namespace attune::engine
