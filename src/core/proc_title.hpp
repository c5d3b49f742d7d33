// Process titles as `ps aux` shows them: "agente-hibrido: master [name]".
#pragma once

#include <string>

namespace agente::core {

// Call once, first thing in main: moves environ out of the way so argv's memory can be reused.
void init_proc_title(int argc, char** argv);
void set_proc_title(const std::string& title);

}  // namespace agente::core
