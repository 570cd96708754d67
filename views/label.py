import streamlit as st

from core.training.curve import measured_need
from core.training.plan import PEOPLE_TEST_MAX, PEOPLE_TEST_MIN
from core.using import label
from core.workspace.store import WorkspaceError
from core.workspace.wording import sentence
from views.common import escape, explained, pick_corpus, show_flash, show_progress, store

st.title("Label people's questions")
st.caption("Real questions decide whether fine-tuning helped: generated ones flatter it. Add "
           "the questions people ask, then mark the passages that answer each one. Every click "
           "is saved at once.")
workspace = store()
corpus = pick_corpus()
show_flash()


def added(report: label.AddReport) -> None:
    st.session_state["flash"] = sentence(report.summary()) + "."
    st.rerun()


total = label.progress(workspace, corpus.id).total
with st.expander("Add questions", expanded=total == 0):
    tab_file, tab_paste, tab_one = st.tabs(["Upload a list", "Paste", "Type one"])
    with tab_file:
        upload = st.file_uploader("Questions: .txt with one per line, or CSV/JSONL/Parquet with "
                                  "a question column", type=["txt", "csv", "jsonl", "parquet"],
                                  key="questions_upload")
        if upload is not None and st.button(f"Add the questions of {escape(upload.name)}",
                                            type="primary"):
            with explained():
                added(label.add_questions(workspace, corpus.id,
                                          label.read_questions(upload.name, upload.getvalue())))
    with tab_paste:
        pasted = st.text_area("One question per line", height=160, key="questions_paste")
        if st.button("Add the pasted questions"):
            with explained():
                added(label.add_questions(workspace, corpus.id, label.parse_pasted(pasted)))
    with tab_one, st.form("one_question", clear_on_submit=True, border=False):
        typed = st.text_input("Question")
        if st.form_submit_button("Add question"):
            with explained():
                added(label.add_questions(workspace, corpus.id, label.parse_pasted(typed)))

progress = label.progress(workspace, corpus.id)
if progress.total == 0:
    st.info("No questions for this corpus yet: add the ones people really ask (support tickets, "
            f"search logs, or a list an expert writes in ten minutes). {PEOPLE_TEST_MIN} labelled make a "
            f"test set that can judge a model; past {PEOPLE_TEST_MAX}, the rest train it too.")
    st.stop()
question = label.current(workspace, corpus.id)
fine_tuned = label.fine_tuned_model(workspace, corpus.id)
counts = st.empty()
# The first question of a session waits for each model to encode the corpus (a minute or more
# for 1,600 passages on a busy CPU): said with a count, and no time left until labelling starts.
if question is not None and not label.ready(workspace, corpus.id, fine_tuned):
    counts.progress(progress.done / progress.total, text=progress.summary(preparing=True))
    with explained(stop=True):
        show_progress(lambda bar: label.prepare(workspace, corpus.id, fine_tuned, bar))
counts.progress(progress.done / progress.total, text=progress.summary())
# Past the fixed targets above, the corpus's own learning curve says what more questions add.
if need := measured_need(workspace, corpus.id):
    st.caption(escape(need) + " (Results page: How many questions do we need?)")


# Each button carries the question it was drawn for: a key pressed twice in quick succession
# then acts on that question or not at all, never on the next one.
def still_current(question_id: int) -> bool:
    now = label.current(workspace, corpus.id)
    return now is not None and now.id == question_id


def act(fn, *args) -> None:
    try:
        fn(workspace, *args)
    except WorkspaceError as e:
        st.session_state["label_error"] = str(e)


# ... and what it showed (a grade, the marks, the last action): core refuses the write when
# another session has changed that since, instead of overwriting or undoing its work. A key
# pressed again before the page has redrawn saw this session's own last write, kept in
# MINE until the page has drawn every button anew.
MINE = "label_mine"


def mine() -> dict:
    return st.session_state.setdefault(MINE, {"grades": {}})


def acted() -> None:
    mine()["action"] = label.last_action(workspace, corpus.id)


def wrote(question_id: int, chunk_id: int, value: int | None) -> None:
    mine()["grades"][question_id, chunk_id] = value
    acted()


def mark(question_id: int, chunk_id: int, seen: int | None) -> None:
    if still_current(question_id):
        seen = mine()["grades"].get((question_id, chunk_id), seen)
        act(lambda *args: wrote(question_id, chunk_id, label.cycle_label(*args)),
            question_id, chunk_id, seen)


def grade(question_id: int, chunk_id: int, value: int, seen: int | None) -> None:
    if still_current(question_id):
        seen = mine()["grades"].get((question_id, chunk_id), seen)
        act(lambda *args: wrote(question_id, chunk_id, label.set_label(*args) or value),
            question_id, chunk_id, value, seen)


def decide(question_id: int, state: str, seen_marks: dict[int, int]) -> None:
    if still_current(question_id):
        own = {c: g for (q, c), g in mine()["grades"].items() if q == question_id}
        seen_marks = {c: g for c, g in {**seen_marks, **own}.items() if g is not None}
        act(lambda *args: (label.decide(*args), acted()), question_id, state, "open", seen_marks)


def undo(seen: int | None) -> None:
    try:
        undone = label.undo(workspace, corpus.id, mine().get("action", seen))
    except WorkspaceError as e:
        st.session_state["label_error"] = str(e)
        return
    acted()
    st.session_state["flash"] = (f"Undone, on “{escape(undone.text)}”." if undone
                                 else "Nothing to undo.")


seen_action = label.last_action(workspace, corpus.id)


if question is None:
    pair_set = label.people_pair_set(workspace, corpus.id)
    tested = label.test_questions(workspace, pair_set.id) if pair_set else 0
    st.success(f"Every question is done: {progress.labelled} with an answer in the corpus, "
               f"{progress.none} without.", icon=":material/task_alt:")
    if progress.skipped and st.button(f"Label the {progress.skipped} skipped questions"):
        label.reopen_skipped(workspace, corpus.id)
        st.rerun()
    if tested:
        st.markdown(f"The pair set **{escape(pair_set.name)}** holds them: {tested} test "
                    "questions that runs on this corpus are judged on.")
        st.page_link("views/results.py", label="Measure the models on them (Results)",
                     icon=":material/monitoring:")
    if "label_error" in st.session_state:
        st.error(escape(st.session_state.pop("label_error")), icon=":material/error:")
    st.button("Undo the last step", key="undo", shortcut="U", on_click=undo, args=(seen_action,))
    st.session_state[MINE] = {"grades": {}}  # the button now carries what it shows
    st.stop()

with explained(stop=True):  # e.g. the fine-tuned model lost its weights: nothing to label with
    shown = label.candidates(workspace, corpus.id, question, fine_tuned)
marks = label.labels_of(workspace, question.id)

st.subheader(escape(question.text))
st.caption("**1–9** mark a passage that answers it (press again: partly relevant, a third time: "
           "clear) · **Enter** done, next · **N** none of these · **S** skip · **U** undo"
           + (" · passages of the base and the fine-tuned model, mixed" if fine_tuned else ""))
if "label_error" in st.session_state:
    st.error(escape(st.session_state.pop("label_error")), icon=":material/error:")

BADGES = {label.RELEVANT: ":green-badge[relevant]", label.PARTLY: ":orange-badge[partly relevant]"}
BUTTONS = {label.RELEVANT: "Relevant", label.PARTLY: "Partly", None: "Mark"}
SHOWN_CHARS = 420  # about three lines: enough to judge most passages at a glance
for number, passage in enumerate(shown, start=1):
    left, right = st.columns([2, 11], vertical_alignment="top")
    state = marks.get(passage.chunk_id)
    left.button(BUTTONS[state], key=f"mark_{number}", type="primary" if state else "secondary",
                shortcut=str(number) if number <= 9 else None, on_click=mark,
                args=(question.id, passage.chunk_id, state), width="stretch",
                help="Relevant; again: partly relevant; again: clear")
    text = " ".join(passage.text.split())
    right.markdown(f"**{number}.** {BADGES.get(state, '')} **{escape(passage.document)}** · "
                   f"{escape(text[:SHOWN_CHARS])}{'…' if len(text) > SHOWN_CHARS else ''}")

done_col, none_col, skip_col, undo_col = st.columns(4)
done_col.button("Done, next", key="done", type="primary", shortcut="Enter", on_click=decide,
                args=(question.id, "labelled", marks), width="stretch")
none_col.button("None of these", key="none", shortcut="N", on_click=decide,
                args=(question.id, "none", marks), width="stretch")
skip_col.button("Skip", key="skip", shortcut="S", on_click=decide,
                args=(question.id, "skipped", marks), width="stretch")
undo_col.button("Undo", key="undo", shortcut="U", on_click=undo, args=(seen_action,),
                width="stretch")

with st.expander("Find a passage the models missed"):
    words = st.text_input("Words the passage contains", key=f"find_{question.id}")
    if words.strip():
        with explained():
            for passage in label.find_passages(workspace, corpus.id, words):
                state = marks.get(passage.chunk_id)
                st.markdown(f"{BADGES.get(state, '')} **{escape(passage.document)}** · "
                            f"{escape(' '.join(passage.text.split())[:400])}")
                c1, c2, _ = st.columns([2, 2, 6])
                c1.button("Relevant", key=f"find_rel_{passage.chunk_id}", on_click=grade,
                          args=(question.id, passage.chunk_id, label.RELEVANT, state))
                c2.button("Partly relevant", key=f"find_part_{passage.chunk_id}", on_click=grade,
                          args=(question.id, passage.chunk_id, label.PARTLY, state))
st.session_state[MINE] = {"grades": {}}  # every button now carries what it shows
