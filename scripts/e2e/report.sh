#!/usr/bin/env bash
# End to end: `mshmon report` on recorded runs (.jsonl and .csv), opened in a real browser
# (Debian's chromium, headless): no console error, the charts drawn (the screenshot is not
# blank where they are), nothing fetched; a long run downsampled; bad input refused.
cd "$(dirname "$0")" && . ./lib.bash
command -v chromium >/dev/null || { fail "chromium is installed (scripts/test installs it)"; finish; exit 1; }

# browse HTML PNG: a screenshot, the console's messages and the DOM as chromium saw them.
browse() {
    local html=$1 png=$2
    timeout 60 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$WORK/chrome" \
        --window-size=1000,2400 --screenshot="$png" --enable-logging=stderr --v=0 "file://$html" 2> "$png.log" >/dev/null
    timeout 60 chromium --headless --no-sandbox --disable-gpu --user-data-dir="$WORK/chrome" --dump-dom "file://$html" \
        2>/dev/null > "$png.dom"
}

echo "report: a leaking run"
"$MSHMON" cycle -n 60 --settle 0 --inject-leak socket-race --quiet --export "$WORK/leak.jsonl" --export "$WORK/leak.csv" >/dev/null
out=$("$MSHMON" report "$WORK/leak.jsonl" 2>&1); rc=$?
check "report RUN.jsonl writes RUN.html, exit 0" [ "$rc:$out" = "0:wrote $WORK/leak.html: 60 sampled cycles, $(( $(stat -c %s "$WORK/leak.html") / 1024 )) KiB" ]
H=$WORK/leak.html
check "self-contained: no script, no link, nothing fetched" sh -c "! grep -Eiq '<script|<link|https?://|src=|@import|url\\(' '$H'"
check "the run's verdict line is in it" grep -qF 'verdict: LEAK fds +1.00/cycle (socket, CLOSE_WAIT +1.00/cycle)' "$H"
check "the fds slope is drawn and named" sh -c "grep -q 'class=slope' '$H' && grep -qF 'LEAK fds: +1.00 fds per cycle' '$H'"
check "the heap's slope is named" grep -q 'LEAK heap: +[0-9.]* bytes per cycle' "$H"
check "sockets by state are stacked, CLOSE_WAIT among them" sh -c "grep -q 'our TCP sockets by state (stacked)' '$H' && grep -q '</span> CLOSE_WAIT' '$H'"
check "the parameters: the command and the injected leak" sh -c "grep -q 'cycle -n 60 --settle 0 --inject-leak socket-race' '$H' && grep -q 'socket-race (on purpose' '$H'"
check "the environment: mshmon's version and the kernel" sh -c "grep -q '<th>mshmon</th><td>0\\.' '$H' && grep -q '<th>kernel</th><td>Linux ' '$H'"
browse "$H" "$WORK/leak.png"
check "chromium: the page has its six charts" [ "$(grep -o '<svg' "$WORK/leak.png.dom" | wc -l)" = 6 ]
check "chromium: no console message" sh -c "! grep -q 'CONSOLE' '$WORK/leak.png.log'"
check "chromium: the charts are drawn (the screenshot is not blank there)" python3 ./pngcheck.py "$WORK/leak.png" 300 1400 5000 20
echo '<!doctype html><title>empty</title>' > "$WORK/empty.html"
browse "$WORK/empty.html" "$WORK/empty.png"
echo '<!doctype html><script>console.error("boom")</script>' > "$WORK/noisy.html"
browse "$WORK/noisy.html" "$WORK/noisy.png"
check "the console check sees a page's console.error (it can fail)" grep -q 'CONSOLE.*boom' "$WORK/noisy.png.log"
check "the blank check fails on an empty page (it can fail)" sh -c "! python3 ./pngcheck.py '$WORK/empty.png' 300 1400 5000 20 >/dev/null"

echo "report: on a phone"
# Headless chromium keeps its window at least 500 px wide, so the report is opened in a
# 390 px frame (a phone's width), as a copy that measures itself once loaded (the report has
# no script of its own).
measure='<script>addEventListener("load", () => console.log("width " + document.documentElement.scrollWidth + " of " + innerWidth))</script>'
phone() {  # phone HTML NAME: frames a measuring copy of HTML, prints "scroll-width viewport-width"
    sed "s|</body>|$measure</body>|" "$1" > "$WORK/$2.html"
    echo "<!doctype html><body style=margin:0><iframe src=$2.html style=width:390px;height:2900px;border:0></iframe>" > "$WORK/$2-frame.html"
    timeout 60 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$WORK/chrome" --allow-file-access-from-files \
        --window-size=600,3000 --screenshot="$WORK/$2.png" --enable-logging=stderr --v=0 "file://$WORK/$2-frame.html" 2> "$WORK/$2.log" >/dev/null
    sed -n 's/.*"width \([0-9]*\) of \([0-9]*\)".*/\1 \2/p' "$WORK/$2.log" | head -n 1
}
widths=$(phone "$H" phone)
check "390 px wide: nothing wider than the screen (scroll width and viewport: ${widths:-not measured})" sh -c "set -- $widths; [ \"\${2:-}\" = 390 ] && [ \"\$1\" -le 390 ]"
check "390 px wide: the charts are drawn, in the frame's 390 columns" python3 ./pngcheck.py "$WORK/phone.png" 200 2800 2000 10
sed 's|</body>|<div style="width:900px">wide</div></body>|' "$H" > "$WORK/wide-report.html"
widths=$(phone "$WORK/wide-report.html" wide)
check "the width check sees a page wider than the screen (it can fail: ${widths:-not measured})" sh -c "set -- $widths; [ \"\${2:-}\" = 390 ] && [ \"\$1\" -gt 390 ]"

echo "report: from the CSV, and a clean run"
out=$("$MSHMON" report "$WORK/leak.csv" -o "$WORK/from-csv.html" 2>&1); rc=$?
check "report RUN.csv -o PATH: exit 0" [ $rc = 0 ] && [ -s "$WORK/from-csv.html" ]
check "the CSV's verdict is judged from its samples" grep -q 'judged from the samples (the run recorded no verdict)' "$WORK/from-csv.html"
check "the CSV's verdict finds the fds leak" grep -qF 'verdict: LEAK fds +1.00/cycle' "$WORK/from-csv.html"
"$MSHMON" cycle -n 40 --settle 0 --quiet --export "$WORK/clean.jsonl" >/dev/null
"$MSHMON" report "$WORK/clean.jsonl" >/dev/null
check "a clean run: its verdict, no slope drawn" sh -c "grep -q 'verdict: no leak over 40 cycles' '$WORK/clean.html' && ! grep -q 'class=slope' '$WORK/clean.html'"

echo "report: a long run"
python3 - "$WORK/long.jsonl" 20000 <<'PY'
import json, sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    f.write(json.dumps({"type": "header", "time": 0, "info": {"broker": "embedded broker mqtt://127.0.0.1:1883", "clientID": "synthetic",
            "command": "mshmon cycle --duration 8h", "started": 1700000000.0}}) + "\n")
    for c in range(1, n + 1):
        used = 2_000_000 + (c % 97) * 64 + (40 * c if c > n // 2 else 0)   # a sawtooth, then a leak from half-way
        f.write('{"cycle":%d,"fds":13,"heap":{"maximum":%d,"total":4000000,"used":%d},"ledger":{"socket":0,"tls":0},'
                '"phases":{"connect":1.1,"disconnect":0.3},"sockets":{"TIME_WAIT":%d},"threads":5,"time":%d.5,"type":"sample"}\n'
                % (c, used, used, min(c, 500), 1700000000 + c))
PY
out=$("$MSHMON" report "$WORK/long.jsonl" 2>&1); rc=$?
check "20,000 cycles: exit 0" [ $rc = 0 ]
size=$(stat -c %s "$WORK/long.html")
check "20,000 cycles: drawn as min–max over 720 buckets, $size bytes (< 400 kB)" sh -c "grep -q '20000 samples drawn as min–max over 720 buckets' '$WORK/long.html' && [ $size -lt 400000 ]"
check "20,000 cycles: the leak from half-way is found" grep -q 'verdict: LEAK heap +40' "$WORK/long.html"

echo "report: bad input"
err=$("$MSHMON" report "$WORK/none.jsonl" 2>&1); rc=$?
check "a missing file: exit 1, named" [ "$rc" = 1 ] && grep -q "cannot read $WORK/none.jsonl" <<<"$err"
err=$("$MSHMON" report "$WORK/leak.log" 2>&1); rc=$?
check "a .log transcript: exit 2, says which files" [ "$rc" = 2 ] && grep -q "read from its .jsonl or .csv export" <<<"$err"
head -n 1 "$WORK/leak.jsonl" > "$WORK/nosamples.jsonl"
err=$("$MSHMON" report "$WORK/nosamples.jsonl" 2>&1); rc=$?
check "no sampled cycle: exit 1, said" [ "$rc" = 1 ] && grep -q "no sampled cycle in it" <<<"$err"

finish
