#include "app/rag/rank.hpp"

#include <algorithm>
#include <unordered_map>

namespace agente::rag {

std::vector<Fused> fuse_rrf(const std::vector<long>& vector_ids, const std::vector<long>& text_ids, int k,
                            double wv, double wt) {
    std::unordered_map<long, std::size_t> at;
    std::vector<Fused> out;
    auto entry = [&](long id) -> Fused& {
        auto [it, fresh] = at.emplace(id, out.size());
        if (fresh) out.push_back({id, 0.0, 0, 0});
        return out[it->second];
    };
    for (std::size_t i = 0; i < vector_ids.size(); ++i) {
        Fused& f = entry(vector_ids[i]);
        if (f.vector_rank) continue;   // a duplicate keeps its best rank
        f.vector_rank = int(i + 1);
        f.score += wv / double(k + f.vector_rank);
    }
    for (std::size_t i = 0; i < text_ids.size(); ++i) {
        Fused& f = entry(text_ids[i]);
        if (f.text_rank) continue;
        f.text_rank = int(i + 1);
        f.score += wt / double(k + f.text_rank);
    }
    double best = (wv + wt) / double(k + 1);
    for (Fused& f : out) f.score = best > 0 ? f.score / best : 0;
    auto rank_or_last = [](int r) { return r ? r : 1 << 30; };
    std::stable_sort(out.begin(), out.end(), [&](const Fused& a, const Fused& b) {
        if (a.score != b.score) return a.score > b.score;
        if (a.vector_rank != b.vector_rank) return rank_or_last(a.vector_rank) < rank_or_last(b.vector_rank);
        return rank_or_last(a.text_rank) < rank_or_last(b.text_rank);
    });
    return out;
}

}  // namespace agente::rag
