// Reciprocal rank fusion (Cormack, Clarke and Büttcher, SIGIR 2009): a chunk's fused score is
// sum over rankings of weight / (k + rank). It needs no calibration between BM25's unbounded scores
// and cosine similarities, only ranks; k = 60 is the paper's value, which damps the difference between
// the first few ranks so that a chunk both rankings place well beats one only a single ranking loves.
// Equal weights by default: neither ranking is known to be better on an unseen corpus (bench/rag
// measures it on ours).
#pragma once

#include <vector>

namespace agente::rag {

struct Fused {
    long id;
    double score;        // normalized to 0..1: 1 for first in both rankings (a ranking not asked for
                         // has weight 0); a chunk only one ranking found scores at most its share
    int vector_rank;     // 1-based; 0 when absent from that ranking
    int text_rank;
};

// `vector_ids` and `text_ids` best first. Ties are broken by the vector rank, then the text rank.
std::vector<Fused> fuse_rrf(const std::vector<long>& vector_ids, const std::vector<long>& text_ids, int k,
                            double vector_weight, double text_weight);

}  // namespace agente::rag
