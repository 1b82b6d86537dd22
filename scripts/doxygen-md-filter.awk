# Input filter of docs/Doxyfile for the Markdown pages (FILTER_PATTERNS): gives each heading
# of level 2 or more the anchor GitHub gives it, so that links within a page, such as
# [Limits](#limits), resolve in the HTML reference as they do on GitHub. doxygen 1.9.4 makes
# no such anchors itself. Doxygen labels are global, so each label is prefixed with the
# page's file name (CONTRACT.md: "CONTRACT_md_limits") and the page's own `](#slug)` links are
# rewritten to match. Lines are never added or removed (warnings keep their line numbers);
# fenced code blocks are left alone.
#
# GitHub's slug: lower case, characters other than letters, digits, spaces, '-' and '_'
# removed, spaces turned into '-', "-1", "-2", ... appended to repeats.

function slug(text,    s) {
    s = tolower(text)
    gsub(/[^a-z0-9 _-]/, "", s)
    gsub(/ /, "-", s)
    return s
}

function prefix(    base) {
    base = FILENAME
    sub(/.*\//, "", base)
    gsub(/[^A-Za-z0-9_]/, "_", base)
    return base "_"
}

FNR == 1 { fence = ""; delete seen; p = prefix() }

{
    line = $0
    if (fence != "") {
        if (line ~ "^[ \t]*" fence) fence = ""
        print line
        next
    }
    if (match(line, /^[ \t]*(```|~~~)/)) {
        fence = substr(line, RSTART, RLENGTH)
        sub(/^[ \t]*/, "", fence)
        print line
        next
    }
    # Links within the page.
    out = ""
    while (match(line, /\]\(#[^)]+\)/)) {
        out = out substr(line, 1, RSTART - 1) "](#" p substr(line, RSTART + 3, RLENGTH - 3)
        line = substr(line, RSTART + RLENGTH)
    }
    line = out line
    if (line ~ /^##+[ \t]/ && line !~ /\{#[^}]*\}[ \t]*$/) {
        text = line
        sub(/^#+[ \t]+/, "", text)
        sub(/[ \t#]+$/, "", text)
        s = slug(text)
        if (s in seen) { seen[s]++; s = s "-" seen[s] } else seen[s] = 0
        line = line " {#" p s "}"
    }
    print line
}
