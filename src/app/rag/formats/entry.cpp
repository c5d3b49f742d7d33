// The module's two entry points (module.hpp); everything else in it is internal.
#include "app/rag/formats/module.hpp"

#include <exception>

extern "C" int agente_rag_formats_abi() { return agente::rag::formats_abi; }

extern "C" bool agente_rag_parse_formatted(std::string_view bytes, agente::rag::Format format,
                                           agente::rag::Document& out, std::string& code, std::string& message) {
    using namespace agente::rag;
    try {
        switch (format) {
        case Format::markdown: out = parse_markdown(bytes); return true;
        case Format::html: out = parse_html(bytes); return true;
        case Format::pdf: out = parse_pdf(bytes); return true;
        case Format::text: break;
        }
        code = "server_error";
        message = "the formats module parses Markdown, HTML and PDF, not plain text";
    } catch (const IngestError& e) {
        code = e.code();
        message = e.what();
    } catch (const std::exception& e) {
        code = "invalid_file";
        message = e.what();
    }
    return false;
}
