# Shared by scripts/test and scripts/bench (source it): cached installs of what they need,
# under $LAKEWRITER_CACHE (default ~/.cache/lakewriter), keyed by the pin files' hashes so a
# version change rebuilds them.

cache="${LAKEWRITER_CACHE:-$HOME/.cache/lakewriter}"
mkdir -p "$cache"

# Prints the path of a virtualenv NAME-<hash> holding the pinned REQUIREMENTS (and, when given,
# pip CONSTRAINTS), building it when missing.
pinned_venv() {
    local requirements="$1" name="$2" constraints="${3:-}"
    local venv="$cache/$name-$(cat "$requirements" ${constraints:+"$constraints"} | sha256sum | cut -c1-12)"
    if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
        echo "$0: building the $name virtualenv in $venv" >&2
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" \
            ${constraints:+-c "$constraints"} >&2
        touch "$venv/.complete"
    fi
    echo "$venv"
}

# Exports LAKEWRITER_SPARK_JARS: the Delta jars for Spark from Maven Central, cached.
export_spark_jars() {
    local jar_list=scripts/readers/spark-jars.txt
    local jars="$cache/spark-jars-$(sha256sum "$jar_list" | cut -c1-12)"
    if [ ! -f "$jars/.complete" ]; then
        echo "$0: fetching the Delta jars for Spark into $jars" >&2
        rm -rf "$jars"
        mkdir -p "$jars"
        grep -v '^#' "$jar_list" | while read -r artifact; do
            [ -n "$artifact" ] || continue
            mvn --batch-mode --quiet dependency:copy -Dartifact="$artifact" \
                -DoutputDirectory="$jars" >&2
        done
        touch "$jars/.complete"
    fi
    LAKEWRITER_SPARK_JARS="$(ls "$jars"/*.jar | paste -sd, -)"
    export LAKEWRITER_SPARK_JARS
}
