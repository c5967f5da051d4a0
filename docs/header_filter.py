#!/usr/bin/env python3
"""Doxygen INPUT_FILTER for mp's headers (docs/Doxyfile.in).

mp's headers are written for people reading them (STYLE.md): plain `//`
comments, a contract block at the top, member comments headed
`// Class::member()`. Doxygen reads only its own comment forms, so this
filter rewrites, line for line (line numbers stay right for warnings):

* the contract block (the comments before `#pragma once`) into the file's
  documentation: the first line is the brief, indented lines are code;
* a comment block directly above a declaration (indented at most two
  spaces, the next line neither blank, nor a brace, nor a preprocessor line)
  into `///` documentation of that declaration, indented lines as code.

Everything else (comments inside bodies, trailing comments) is left as is.
"""
import re
import sys

CODE = re.compile(r"^//(\s{2,}\S.*)$")  # "//   q.put(42);": two or more spaces in
MARKUP = re.compile(r"([<>\\@#%&$])")


def escape(text):
    # Doxygen would read <mp/mp.hpp>, \n, @param, #name and &c as markup.
    return MARKUP.sub(r"\\\1", text)


def render(block, prefix):
    """The comment lines of one block as Doxygen lines (same count)."""
    out = []
    in_code = False
    for n, line in enumerate(block):
        body = line.strip()
        code = CODE.match(body)
        text = body[2:].strip()
        if code and not in_code:
            out.append(f"{prefix} \\code{{.cpp}} {code.group(1).strip()}")
            in_code = True
        elif code:
            out.append(f"{prefix} {code.group(1)}")
        else:
            if in_code:
                # close the code block on the line before: keep line numbers
                out[-1] += " \\endcode"
                in_code = False
            out.append(f"{prefix} {escape(text)}")
    if in_code:
        out[-1] += " \\endcode"
    return out


def main(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    out = []
    i = 0
    seen_pragma = False
    while i < len(lines):
        line = lines[i]
        stripped = line.lstrip()
        if stripped.startswith("#pragma once"):
            seen_pragma = True
        if stripped.startswith("//") and not stripped.startswith("///"):
            j = i
            while j < len(lines) and lines[j].lstrip().startswith("//"):
                j += 1
            block = lines[i:j]
            indent = len(line) - len(stripped)
            nxt = lines[j].strip() if j < len(lines) else ""
            if not seen_pragma and i == 0:
                # the contract block: file documentation, first line the brief
                rendered = render(block, "///")
                first = block[0].strip()[2:].strip()
                # \file ends the line (it takes an optional name on its own line)
                rendered[0] = "/// \\brief " + escape(first) + " \\file"
                out.extend(rendered)
            elif indent <= 2 and nxt and not nxt.startswith(("}", "#", "//", "public:", "private:", "protected:")):
                out.extend(" " * indent + l for l in render(block, "///"))
            else:
                out.extend(block)
            i = j
            continue
        out.append(line)
        i += 1
    sys.stdout.write("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
