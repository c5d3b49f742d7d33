#include "app/rag/grounded_prompt.hpp"

#include <algorithm>
#include <cctype>
#include <iterator>
#include <set>

namespace agente::rag {

using nlohmann::json;

namespace {

// A message's text: its content string, or the text parts of its content list.
std::string message_text(const json& m) {
    auto content = m.find("content");
    if (content == m.end()) return {};
    if (content->is_string()) return content->get<std::string>();
    std::string text;
    if (content->is_array())
        for (auto& part : *content)
            if (part.is_object() && part.value("type", "") == "text" && part.contains("text") && part["text"].is_string()) {
                if (!text.empty()) text += "\n";
                text += part["text"].get<std::string>();
            }
    return text;
}

std::string role_of(const json& m) {
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) return {};
    return m["role"].get<std::string>();
}

}  // namespace

std::string cut_utf8(std::string text, std::size_t n) {
    if (text.size() <= n) return text;
    while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
    text.resize(n);
    return text;
}

std::string retrieval_query(const json& messages, int turns, std::size_t max_bytes) {
    if (!messages.is_array()) return {};
    auto last = messages.rend();
    for (auto it = messages.rbegin(); it != messages.rend(); ++it)
        if (role_of(*it) == "user") {
            last = it;
            break;
        }
    if (last == messages.rend()) return {};
    std::string query = message_text(*last);
    if (query.empty()) return {};
    int taken = 0;
    for (auto it = std::next(last); it != messages.rend() && taken < turns && query.size() < max_bytes; ++it) {
        std::string role = role_of(*it);
        if (role != "user" && role != "assistant") continue;   // the system prompt says nothing of the topic
        std::string text = message_text(*it);
        ++taken;
        if (!text.empty()) query += "\n" + text;
    }
    return cut_utf8(std::move(query), max_bytes);
}

std::vector<Source> sources_from(const std::vector<std::string>& stores, const std::vector<json>& pages, int max) {
    std::vector<Source> all;
    for (std::size_t i = 0; i < pages.size() && i < stores.size(); ++i) {
        auto data = pages[i].find("data");
        if (data == pages[i].end() || !data->is_array()) continue;
        for (auto& hit : *data) {
            if (!hit.is_object()) continue;
            Source s;
            s.store = stores[i];
            s.file_id = hit.value("file_id", "");
            s.filename = hit.value("filename", "");
            s.score = hit.value("score", 0.0);
            if (auto c = hit.find("content"); c != hit.end() && c->is_array())
                for (auto& part : *c)
                    if (part.is_object() && part.contains("text") && part["text"].is_string()) s.text += part["text"].get<std::string>();
            if (auto chunk = hit.find("chunk"); chunk != hit.end() && chunk->is_object()) {
                s.section = chunk->value("section", "");
                s.page = chunk->value("page", 0);
            }
            if (!s.text.empty()) all.push_back(std::move(s));
        }
    }
    // Scores of one ranker compare across stores (each is 0..1 against its own best possible).
    std::stable_sort(all.begin(), all.end(), [](const Source& a, const Source& b) { return a.score > b.score; });
    if (all.size() > std::size_t(std::max(max, 0))) all.resize(std::size_t(std::max(max, 0)));
    for (std::size_t i = 0; i < all.size(); ++i) all[i].number = int(i + 1);
    return all;
}

json with_sources(json body, const std::vector<Source>& sources) {
    std::string prompt =
        "Answer the user's question from the numbered sources below, and from nothing else. After each statement, "
        "cite the sources it comes from by their numbers in square brackets, like [1] or [2][3]. If the sources do "
        "not contain the answer, say that the documents do not cover it, and cite nothing.\n";
    for (const Source& s : sources) {
        prompt += "\n[" + std::to_string(s.number) + "] " + s.filename;
        if (!s.section.empty()) prompt += ", section \"" + s.section + "\"";
        if (s.page > 0) prompt += ", page " + std::to_string(s.page);
        prompt += ":\n" + s.text + "\n";
    }
    json messages = json::array({{{"role", "system"}, {"content", prompt}}});
    if (auto m = body.find("messages"); m != body.end() && m->is_array())
        for (auto& x : *m) messages.push_back(std::move(x));
    body["messages"] = std::move(messages);
    return body;
}

json citations(std::string_view answer, const std::vector<Source>& sources) {
    std::set<int> cited;
    for (std::size_t open = answer.find('['); open != std::string_view::npos; open = answer.find('[', open + 1)) {
        // "[1]", "[1, 2]", "[1,2]": numbers separated by commas and blanks up to the bracket.
        std::vector<int> numbers;
        std::size_t i = open + 1;
        bool ok = false;
        while (i < answer.size()) {
            std::size_t start = i;
            int n = 0;
            while (i < answer.size() && std::isdigit(static_cast<unsigned char>(answer[i])) && i - start < 4)
                n = n * 10 + (answer[i++] - '0');
            if (i == start) break;
            numbers.push_back(n);
            while (i < answer.size() && answer[i] == ' ') ++i;
            if (i < answer.size() && answer[i] == ']') {
                ok = true;
                break;
            }
            if (i < answer.size() && answer[i] == ',') ++i;
            while (i < answer.size() && answer[i] == ' ') ++i;
        }
        if (ok) cited.insert(numbers.begin(), numbers.end());
    }
    json out = json::array();
    for (int n : cited) {
        if (n < 1 || std::size_t(n) > sources.size()) continue;
        const Source& s = sources[std::size_t(n - 1)];
        json page = nullptr;
        if (s.page > 0) page = s.page;
        out.push_back({{"index", n}, {"file_id", s.file_id}, {"filename", s.filename}, {"vector_store", s.store},
                       {"section", s.section}, {"page", page}, {"quote", s.text}, {"score", s.score}});
    }
    return out;
}

std::string nothing_found_text() {
    return "The documents I can search (this model's vector stores) have nothing on this question, so I cannot answer "
           "it from them.";
}

}  // namespace agente::rag
