#include "app/rag/vector_index.hpp"

#include <hnswlib/hnswlib.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <atomic>
#include <limits>
#include <queue>
#include <thread>

namespace agente::rag {

namespace {

// Below this share of the store, a filter goes straight to exact search over what it allows: the
// HNSW walk would have to step through ~1/share nodes per allowed one, more than exact search costs.
constexpr double exact_below_selectivity = 0.05;
// Distances an HNSW walk computes per node it keeps in its beam (a node's new neighbours, measured
// roughly on 512-dim embeddings with M 16): what a filtered walk is priced at against exact search.
constexpr double walk_distances_per_node = 10;
// Room made at each growth of the graph, as a factor of its size.
constexpr std::size_t growth_factor = 2;

using ScoredRow = std::pair<float, std::size_t>;   // (score, row)

}  // namespace

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("arch=haswell", "default")))
#endif
float dot(const float* a, const float* b, std::size_t n) {
    float acc[32] = {};
    std::size_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (std::size_t j = 0; j < 32; ++j) acc[j] += a[i + j] * b[i + j];
    float s = 0;
    for (std::size_t j = 0; j < 32; ++j) s += acc[j];
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
}

namespace {

float dot_distance(const void* a, const void* b, const void* dims) {
    return 1.0f - dot(static_cast<const float*>(a), static_cast<const float*>(b), *static_cast<const std::size_t*>(dims));
}

class DotSpace final : public hnswlib::SpaceInterface<float> {
public:
    explicit DotSpace(std::size_t dims) : dims_(dims) {}
    std::size_t get_data_size() override { return dims_ * sizeof(float); }
    hnswlib::DISTFUNC<float> get_dist_func() override { return dot_distance; }
    void* get_dist_func_param() override { return &dims_; }

private:
    std::size_t dims_;
};

}  // namespace

// The graph and its space (the space must outlive the graph, which points into it). Labels are rows.
class HnswGraph {
public:
    HnswGraph(int dims, const std::string& path) : space(std::size_t(dims)) {
        h = std::make_unique<hnswlib::HierarchicalNSW<float>>(&space, path);
    }
    HnswGraph(int dims, std::size_t capacity, const HnswOptions& o)
        : space(std::size_t(dims)),
          h(std::make_unique<hnswlib::HierarchicalNSW<float>>(&space, capacity, std::size_t(o.m),
                                                               std::size_t(o.ef_construction))) {}
    DotSpace space;
    std::unique_ptr<hnswlib::HierarchicalNSW<float>> h;

    void add(const float* v, std::size_t row) {
        if (h->cur_element_count >= h->max_elements_) h->resizeIndex(std::max<std::size_t>(16, h->max_elements_ * growth_factor));
        h->addPoint(v, row);
    }
};

VectorIndex::VectorIndex(int dims) : dims_(dims) {}
VectorIndex::~VectorIndex() = default;

std::size_t VectorIndex::memory_bytes() const {
    std::size_t b = flat_.capacity() * sizeof(float) + labels_.capacity() * (sizeof(long) + sizeof(int) + 1) +
                    row_of_.size() * (sizeof(long) + sizeof(std::size_t) + 2 * sizeof(void*));
    if (graph_) {
        const auto& h = *graph_->h;
        b += h.max_elements_ * h.size_data_per_element_ + h.max_elements_ * (sizeof(void*) + sizeof(int));
        for (std::size_t i = 0; i < h.cur_element_count; ++i)
            b += std::size_t(h.element_levels_[i]) * h.size_links_per_element_;
    }
    return b;
}

const float* VectorIndex::vector_of(std::size_t row) const {
    if (!graph_) return flat_.data() + row * std::size_t(dims_);
    return reinterpret_cast<const float*>(graph_->h->getDataByInternalId(graph_->h->label_lookup_.at(row)));
}

bool VectorIndex::allowed_row(std::size_t row, const std::vector<char>* allowed) const {
    if (!alive_[row]) return false;
    if (!allowed) return true;
    std::size_t g = std::size_t(groups_[row]);
    return g < allowed->size() && (*allowed)[g];
}

void VectorIndex::add(long label, int group, const float* v) {
    remove(label);
    std::size_t row = labels_.size();
    if (graph_) graph_->add(v, row);
    else flat_.insert(flat_.end(), v, v + dims_);
    labels_.push_back(label);
    groups_.push_back(group);
    alive_.push_back(1);
    row_of_[label] = row;
    if (std::size_t(group) >= group_counts_.size()) group_counts_.resize(std::size_t(group) + 1, 0);
    ++group_counts_[std::size_t(group)];
    ++alive_count_;
    max_label_ = std::max(max_label_, label);
}

std::vector<long> VectorIndex::labels() const {
    std::vector<long> out;
    out.reserve(row_of_.size());
    for (auto& [label, row] : row_of_) out.push_back(label);
    return out;
}

bool VectorIndex::remove(long label) {
    auto it = row_of_.find(label);
    if (it == row_of_.end()) return false;
    std::size_t row = it->second;
    alive_[row] = 0;   // stays in the graph, walked through, never returned (as hnswlib's delete mark)
    --group_counts_[std::size_t(groups_[row])];
    --alive_count_;
    row_of_.erase(it);
    return true;
}

std::vector<Hit> VectorIndex::exact(const float* q, std::size_t k, const std::vector<char>* allowed) const {
    std::priority_queue<ScoredRow, std::vector<ScoredRow>, std::greater<ScoredRow>> best;   // worst on top
    auto consider = [&](std::size_t row, const float* v) {
        if (!allowed_row(row, allowed)) return;
        float s = dot(q, v, std::size_t(dims_));
        if (best.size() < k) best.emplace(s, row);
        else if (s > best.top().first) {
            best.pop();
            best.emplace(s, row);
        }
    };
    if (k == 0) return {};
    if (graph_) {
        const auto& h = *graph_->h;
        for (hnswlib::tableint id = 0; id < h.cur_element_count; ++id)
            consider(std::size_t(h.getExternalLabel(id)), reinterpret_cast<const float*>(h.getDataByInternalId(id)));
    } else {
        for (std::size_t row = 0; row < labels_.size(); ++row) consider(row, flat_.data() + row * std::size_t(dims_));
    }
    std::vector<Hit> out(best.size());
    for (std::size_t i = out.size(); i-- > 0; best.pop()) out[i] = {labels_[best.top().second], best.top().first};
    return out;
}

// hnswlib's search (greedy descent, then a beam over level 0), with the filter inside the beam:
// disallowed and removed nodes extend the walk but never enter the results, and the walk stops only
// once it holds `ef` allowed results that nothing left can beat. `complete` is false when it gave up
// after computing `budget` distances.
std::vector<Hit> VectorIndex::hnsw_search(const float* q, std::size_t k, const std::vector<char>* allowed,
                                          std::size_t ef, std::size_t budget, bool& complete) const {
    const auto& h = *graph_->h;
    complete = true;
    if (h.cur_element_count == 0) return {};
    auto distance = [&](hnswlib::tableint id) { return h.fstdistfunc_(q, h.getDataByInternalId(id), h.dist_func_param_); };
    hnswlib::tableint cur = h.enterpoint_node_;
    float cur_d = distance(cur);
    for (int level = h.maxlevel_; level > 0; --level) {
        for (bool changed = true; changed;) {
            changed = false;
            unsigned int* data = h.get_linklist(cur, level);
            int size = h.getListCount(data);
            auto* links = reinterpret_cast<hnswlib::tableint*>(data + 1);
            for (int i = 0; i < size; ++i) {
                float d = distance(links[i]);
                if (d < cur_d) {
                    cur_d = d;
                    cur = links[i];
                    changed = true;
                }
            }
        }
    }
    std::size_t computed = 0;   // distances, against `budget`
    hnswlib::VisitedList* vl = h.visited_list_pool_->getFreeVisitedList();
    hnswlib::vl_type* mass = vl->mass;
    hnswlib::vl_type tag = vl->curV;
    using DistId = std::pair<float, hnswlib::tableint>;
    std::priority_queue<DistId> top;          // accepted, farthest on top
    std::priority_queue<DistId> candidates;   // by negated distance: nearest on top
    float lower = std::numeric_limits<float>::max();
    auto accept = [&](hnswlib::tableint id) { return allowed_row(std::size_t(h.getExternalLabel(id)), allowed); };
    if (accept(cur)) {
        top.emplace(cur_d, cur);
        lower = cur_d;
    }
    candidates.emplace(-cur_d, cur);
    mass[cur] = tag;
    while (!candidates.empty()) {
        auto [neg, id] = candidates.top();
        if (-neg > lower && top.size() >= ef) break;
        candidates.pop();
        unsigned int* data = h.get_linklist0(id);
        int size = h.getListCount(data);
        auto* links = reinterpret_cast<hnswlib::tableint*>(data + 1);
        for (int i = 0; i < size; ++i) {
            hnswlib::tableint n = links[i];
            if (mass[n] == tag) continue;
            mass[n] = tag;
            float d = distance(n);
            ++computed;
            if (top.size() >= ef && d >= lower) continue;
            candidates.emplace(-d, n);
            if (accept(n)) {
                top.emplace(d, n);
                if (top.size() > ef) top.pop();
                lower = top.top().first;
            }
        }
        if (computed > budget) {
            complete = false;
            break;
        }
    }
    h.visited_list_pool_->releaseVisitedList(vl);
    while (top.size() > k) top.pop();
    std::vector<Hit> out(top.size());
    for (std::size_t i = out.size(); i-- > 0; top.pop())
        out[i] = {labels_[std::size_t(h.getExternalLabel(top.top().second))], 1.0f - top.top().first};
    return out;
}

std::vector<Hit> VectorIndex::search(const float* q, std::size_t k, const std::vector<char>* allowed,
                                     int ef_search) const {
    if (!graph_ || alive_count_ == 0) return exact(q, k, allowed);
    std::size_t allowed_n = alive_count_;
    if (allowed) {
        allowed_n = 0;
        for (std::size_t g = 0; g < group_counts_.size() && g < allowed->size(); ++g)
            if ((*allowed)[g]) allowed_n += group_counts_[g];
    }
    std::size_t want = std::min(k, allowed_n);
    if (want == 0) return {};
    double share = double(allowed_n) / double(alive_count_);
    if (share < exact_below_selectivity) return exact(q, k, allowed);
    // The beam holds allowed nodes only, so the walk goes about 1/share times further to fill it
    // (widening ef as well would pay for the filter twice): some ef / share nodes, each with its
    // neighbours' distances. When exact search over the allowed vectors costs less, it is taken; a
    // walk that comes to cost as much gives up for it.
    std::size_t ef = std::max<std::size_t>(std::size_t(ef_search), k);
    double walk = double(ef) / share * walk_distances_per_node;
    if (allowed && double(allowed_n) <= walk) return exact(q, k, allowed);
    std::size_t budget = std::max<std::size_t>(allowed_n, std::size_t(walk));
    bool complete = true;
    std::vector<Hit> hits = hnsw_search(q, k, allowed, ef, budget, complete);
    if (!complete || hits.size() < want) return exact(q, k, allowed);
    return hits;
}

VectorIndex::Snapshot VectorIndex::snapshot() const {
    Snapshot s;
    s.dims = dims_;
    s.rows = labels_.size();
    if (!graph_) {
        s.data = flat_;
    } else {
        s.data.resize(s.rows * std::size_t(dims_));
        for (std::size_t r = 0; r < s.rows; ++r) std::copy_n(vector_of(r), dims_, s.data.data() + r * std::size_t(dims_));
    }
    return s;
}

std::shared_ptr<HnswGraph> VectorIndex::build(const Snapshot& s, const HnswOptions& o) {
    auto g = std::make_shared<HnswGraph>(s.dims, std::max<std::size_t>(s.rows + s.rows / 4, 16), o);
    std::atomic<std::size_t> next{0};
    auto work = [&] {
        for (std::size_t r; (r = next.fetch_add(1)) < s.rows;) g->h->addPoint(s.data.data() + r * std::size_t(s.dims), r);
    };
    // The first point alone: hnswlib's concurrent inserts need an entry point to exist.
    if (s.rows > 0) {
        g->h->addPoint(s.data.data(), 0);
        next = 1;
    }
    std::vector<std::thread> threads;
    for (int t = 1; t < o.threads; ++t) threads.emplace_back(work);
    work();
    for (auto& t : threads) t.join();
    return g;
}

void VectorIndex::adopt(std::shared_ptr<HnswGraph> graph) {
    std::size_t built = graph->h->cur_element_count;
    for (std::size_t row = built; row < labels_.size(); ++row) graph->add(vector_of(row), row);
    graph_ = std::move(graph);
    std::vector<float>().swap(flat_);
}

}  // namespace agente::rag

namespace agente::rag {

void VectorIndex::save_graph(const std::string& path) const {
    if (!graph_) throw std::logic_error("save_graph: no graph to save");
    graph_->h->saveIndex(path);   // an ofstream that reports nothing: the caller checks the size
}

std::shared_ptr<HnswGraph> VectorIndex::load_graph(int dims, const std::string& path) {
    auto g = std::make_shared<HnswGraph>(dims, path);   // hnswlib checks the file's length against its lists
    const auto& h = *g->h;
    auto bad = [&](const char* why) { throw std::runtime_error(path + ": " + why); };
    // The layout hnswlib derives from the space, against what the file says.
    std::size_t links0 = h.maxM0_ * sizeof(hnswlib::tableint) + sizeof(hnswlib::linklistsizeint);
    std::size_t data = std::size_t(dims) * sizeof(float);
    if (h.offsetData_ != links0 || h.label_offset_ != links0 + data ||
        h.size_data_per_element_ != links0 + data + sizeof(hnswlib::labeltype) || h.offsetLevel0_ != 0)
        bad("not a graph of this dimension");
    std::size_t n = h.cur_element_count;
    if (n == 0 || h.enterpoint_node_ >= n || h.maxlevel_ < 0) bad("no entry point");
    std::vector<char> seen(n, 0);
    for (std::size_t id = 0; id < n; ++id) {
        // Labels are the rows 0..n-1, each once (build() inserts row r as label r, from threads that
        // may take their internal ids in another order).
        std::size_t row = h.getExternalLabel(hnswlib::tableint(id));
        if (row >= n || seen[row]) bad("labels are not the rows");
        seen[row] = 1;
        int levels = h.element_levels_[id];
        if (levels > h.maxlevel_) bad("a node above the top level");
        for (int level = 0; level <= levels; ++level) {
            unsigned int* list = level == 0 ? h.get_linklist0(hnswlib::tableint(id)) : h.get_linklist(hnswlib::tableint(id), level);
            std::size_t count = h.getListCount(list);
            if (count > (level == 0 ? h.maxM0_ : h.maxM_)) bad("a list longer than M");
            auto* links = reinterpret_cast<hnswlib::tableint*>(list + 1);
            for (std::size_t i = 0; i < count; ++i)
                if (links[i] >= n) bad("a link out of range");
        }
    }
    return g;
}

bool VectorIndex::adopt_saved(std::shared_ptr<HnswGraph> graph, const std::vector<long>& labels_by_row,
                              double min_share) {
    if (graph_ || !graph || graph->h->cur_element_count != labels_by_row.size()) return false;
    const std::size_t n = labels_by_row.size(), bytes = std::size_t(dims_) * sizeof(float);
    std::vector<long> labels;
    std::vector<int> groups;
    std::vector<char> alive, placed(labels_.size(), 0);
    std::unordered_map<long, std::size_t> row_of;
    std::size_t matched = 0;
    for (std::size_t r = 0; r < n; ++r) {
        long label = labels_by_row[r];
        auto it = row_of_.find(label);
        const void* saved = graph->h->getDataByInternalId(graph->h->label_lookup_.at(r));
        bool same = it != row_of_.end() && !row_of.count(label) && std::memcmp(vector_of(it->second), saved, bytes) == 0;
        labels.push_back(label);
        groups.push_back(same ? groups_[it->second] : 0);
        alive.push_back(same ? 1 : 0);
        if (!same) continue;
        row_of[label] = r;
        placed[it->second] = 1;
        ++matched;
    }
    if (double(matched) < min_share * double(n) || double(matched) < min_share * double(alive_count_)) return false;
    for (std::size_t old = 0; old < labels_.size(); ++old) {
        if (!alive_[old] || placed[old]) continue;
        graph->add(vector_of(old), labels.size());
        row_of[labels_[old]] = labels.size();
        labels.push_back(labels_[old]);
        groups.push_back(groups_[old]);
        alive.push_back(1);
    }
    std::fill(group_counts_.begin(), group_counts_.end(), 0);
    for (std::size_t r = 0; r < labels.size(); ++r)
        if (alive[r]) ++group_counts_[std::size_t(groups[r])];
    labels_ = std::move(labels);
    groups_ = std::move(groups);
    alive_ = std::move(alive);
    row_of_ = std::move(row_of);
    graph_ = std::move(graph);
    std::vector<float>().swap(flat_);
    return true;
}

}  // namespace agente::rag
