"""The classroom texts shown beside each step of the app ("How it works" panels).

Plain Markdown constants, written for someone projecting the app in front of a class: short,
concrete, one idea per paragraph. No user text ever goes in here, so nothing needs escaping.
"""

INTRO = """# bertdemo — fine-tune a small BERT on your own labeled texts
**1 Data** → **2 Train** → **3 Evaluate** → **4 Predict & Explain** → **5 Label** (and retrain) → **6 Models**.
Start with a bundled sample: pick it on the *Data* tab and click **Use this sample**."""

DATA = """### How it works: the data
A **text classifier** learns from examples: each row is a *text* and the *label* a person gave it.

- We hold back a **validation** share (20 %) that the model never trains on. Its score tells us how
  well the model does on texts it has not seen — the only score that matters.
- **Tokenization**: BERT does not read words, it reads *word-pieces* from a fixed vocabulary of ~30 000.
  Rare words are split: `unbelievable → un ##bel ##ie ##vable`. The `##` means "continues the word before".
- Every text starts with a special **[CLS]** token and ends with **[SEP]**.
- BERT reads at most `max_length` word-pieces; longer texts are cut (the red line in the histogram).
- **Balance** matters: if one class has 10× more rows, the model can look good by mostly guessing it.
- **Several labels per text** (`billing|bug`, or one 0/1 column per label): the model gives each label its own
  yes/no. Write `none` when no label applies; an empty cell means "not labeled yet" and is left out.
"""

TRAIN = """### How it works: fine-tuning
We start from a **pre-trained** model that has already read millions of sentences, so it knows a lot
about language. We add one small **classification layer** on top of the **[CLS]** token's vector and
train the whole thing a little on *your* examples. That is **fine-tuning**.

- **Loss** (cross-entropy) measures how surprised the model is by the right answer:
  `loss = −log(probability given to the correct label)`. 100 % sure and right → 0.
  A coin-flip between 2 classes → 0.69. Lower is better.
- **Training loss** falls as the model fits the training rows. **Validation loss** tells us whether
  that learning *generalises*. If validation loss rises while training loss keeps falling, the model is
  memorising (**over-fitting**): we keep the checkpoint with the best validation macro-F1.
- **Learning rate**: how big each update step is. It warms up, then decays to 0.
- An **epoch** is one pass over all training rows; a **step** is one batch.
"""

EVALUATE = """### How it works: evaluation
All scores here are on the **validation** rows, which the model never trained on.

- **Accuracy**: the share of texts labeled correctly.
- **Precision** of a class: of the texts we *called* "sports", how many were sports?
  **Recall**: of the real sports texts, how many did we find? **F1** combines the two.
- **Macro-F1** averages F1 over classes, so a small class counts as much as a big one.
- The **confusion matrix**: rows are the true label, columns the prediction. The diagonal is right;
  everything else shows *which* classes get mixed up.
- The mistakes the model was **most confident** about are the most interesting: often the label is
  wrong, or the text is genuinely ambiguous. Click one to explain it.
"""

PREDICT = """### How it works: a prediction
1. The text is split into word-pieces and wrapped in **[CLS] … [SEP]**.
2. Each layer lets every token look at every other token (**self-attention**) and update its vector.
3. The final **[CLS]** vector goes through the classification layer, and a **softmax** turns the
   scores into probabilities that sum to 100 %. A multi-label model takes a **sigmoid** of each score
   instead: every label gets its own yes/no probability, and it applies from its threshold up.
"""

ATTENTION = """### How it works: attention
Each **layer** has several **heads**; each head is a separate way of deciding *which tokens to look at*.
In the heatmap, **row i** shows how token *i* spreads its attention (the row sums to 1) over the
columns. Different heads learn different habits: the next word, the previous word, [SEP], punctuation…

- **[CLS] row**: what the classification token gathers from, layer by layer.
- **Rollout** multiplies the attention of all layers together (plus the skip connections) to estimate
  how information flows from the input to the top.
"""

CAUTION = ("⚠️ **Attention is not explanation.** Attention shows where information *can* flow, not which "
           "words *caused* the prediction. Attributions below are a better (but still imperfect) guide.")

ATTRIBUTION = """### How it works: attributions
**Gradient × input** asks: if this token's embedding changed a little, how much would the score
(the *logit*, the number the softmax turns into a probability) of the target class change?
**Integrated gradients** adds that up along a path from an empty input to the real one, so the
token scores add up to how much the whole text raised the class's score — more reliable.
**Occlusion** simply removes each word-piece in turn and watches the probability.
**Red** tokens push towards the target class, **blue** tokens push away from it.

### How do we know an explanation is right? The deletion test
Every explanation *claims* some words matter most. So remove them and see: if the probability of the class
falls a lot, the claim was true (**comprehensiveness**, higher is better). Keep *only* those words: if the
probability stays, they were enough (**sufficiency**, lower is better). Do the same with words picked at
**random**: an explanation that does no better than random explains nothing on this text.

Attention can look very convincing — the [CLS] token "looks at" sensible words — and still fail this test:
attention says where information *can* flow, not which words the decision *depends on*. The test measures
that, text by text, so no method is trusted blindly (which one wins changes from text to text).
"""

COMPARE = """### Base model vs fine-tuned
The **base** model has never seen your labels; the **fine-tuned** one has. Compare where their [CLS]
token looks: fine-tuning changes mostly the top layers, and the [CLS] row often shifts towards the
words that matter for *your* task.
"""

MODELS = """### How it works: runs
Every training run is saved as a folder: the weights (`model.safetensors`), the tokenizer, the
label names, the settings and the scores. A saved run loads in one line anywhere:

```python
from transformers import pipeline
clf = pipeline("text-classification", model="workspace/<run folder>")
```
Download a run as a zip to share it or use it outside this app.
"""

LABEL = """### How it works: labeling with the model in the loop
A model you trained can help you label more data — and find labels that are wrong.

- **A new project** starts in import order: the uncertain queues need a model, and the first one comes when you
  Retrain. From then on the project's latest run suggests labels (or one you pick under *Suggestions from*).
- **Uncertain** queues show the texts the model is least sure of first. *Margin* is the gap between its two
  likeliest classes: a small gap means the text sits near the border between them, where a new label teaches
  the model most. Labeling those first usually beats labeling at random (try the active-learning curve).
- **Suspicious labels**: the model is trained several times, each time without a part of your labels, and
  judges that part. A label it finds very unlikely, though it never trained on it, is worth a second look.
- **Highlights** show which words pushed the model towards its suggestion (red) or away (blue). They can bias
  you: switch them off if you want your own judgement first.
- **Retrain** trains on your current labels. The first retrain sets aside a *frozen validation set*, so that
  every later run is scored on the same texts and you can see whether your labels helped.
"""

PRETRAIN = """### How it works: pretraining
Before BERT can be fine-tuned to classify, it has to learn the language itself. **Pretraining** teaches it
that from plain text, with no labels at all: hide some words and ask the model to guess them back.

- **Masked-language modelling (MLM)**: in every sequence 15 % of the word-pieces are chosen. Of those, 80 %
  become `[MASK]`, 10 % a random word-piece and 10 % stay as they were — so the model cannot just wait for a
  `[MASK]`: it has to understand every word. The loss counts the chosen pieces only.
- **MLM loss** is the cross-entropy on those pieces: `−log(probability of the hidden piece)`. A model guessing
  at random among 8,000 pieces has a loss of about 9; every point lower is e (2.7×) more sure of the right one.
  **Held-out** loss and **masked-token accuracy** are measured on texts the model never trains on.
- **Next-sentence prediction** (mlm+nsp, the original BERT's second task): does sentence B follow A? Later
  models (RoBERTa) dropped it: it helps little.
- **Whole-word masking** hides every piece of a word together, so `play ##ing` cannot be guessed from `##ing`.
- **From scratch** the model also learns its vocabulary from your texts. **Continuing** from a model adapts
  one that already knows a language to your domain: cheaper, and usually better.
- The budget is **time**: the learning rate warms up, then falls to zero exactly when the minutes are up.
  A few minutes on a CPU give a toy model; BERT-base read 3.3 billion words for days on 16 TPU chips.

Then **fine-tune from this model**: the classifier starts from what pretraining learnt, instead of from zero.
"""

FILL_MASK = """Type a sentence and put **[brackets]** around a word (or a Chinese character) to hide it, or type
**[MASK]** for a blank with no answer. The model sees only the rest and ranks every word-piece of its vocabulary:
the bars are its five best guesses, green when one is the hidden word. While a pretraining runs, *the pretraining
running now* answers with the weights of its newest evaluation — ask again after the next one and watch the guesses
improve."""

MASKING = """**One sentence as the model sees it** in one training step. Each time it reads the sentence, other
pieces are chosen: press *Mask again*."""
