import streamlit as st

from core import label
from core.store import WorkspaceError
from core.wording import sentence
from views.common import escape, explained, pick_corpus, show_flash, store

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
    st.info("No questions for this corpus yet: add 50 that people really ask (support tickets, "
            "search logs, or a list an expert writes in ten minutes).")
    st.stop()
st.progress(progress.done / progress.total, text=progress.summary())


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


def mark(question_id: int, chunk_id: int) -> None:
    if still_current(question_id):
        act(label.cycle_label, question_id, chunk_id)


def grade(question_id: int, chunk_id: int, value: int) -> None:
    if still_current(question_id):
        act(label.set_label, question_id, chunk_id, value)


def decide(question_id: int, state: str) -> None:
    if still_current(question_id):
        act(label.decide, question_id, state)


def undo() -> None:
    undone = label.undo(workspace, corpus.id)
    st.session_state["flash"] = (f"Undone, on “{escape(undone.text)}”." if undone
                                 else "Nothing to undo.")


question = label.current(workspace, corpus.id)
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
    st.button("Undo the last step", key="undo", shortcut="U", on_click=undo)
    st.stop()

fine_tuned = label.fine_tuned_model(workspace, corpus.id)
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
                args=(question.id, passage.chunk_id), width="stretch",
                help="Relevant; again: partly relevant; again: clear")
    text = " ".join(passage.text.split())
    right.markdown(f"**{number}.** {BADGES.get(state, '')} **{escape(passage.document)}** · "
                   f"{escape(text[:SHOWN_CHARS])}{'…' if len(text) > SHOWN_CHARS else ''}")

done_col, none_col, skip_col, undo_col = st.columns(4)
done_col.button("Done, next", key="done", type="primary", shortcut="Enter", on_click=decide,
                args=(question.id, "labelled"), width="stretch")
none_col.button("None of these", key="none", shortcut="N", on_click=decide,
                args=(question.id, "none"), width="stretch")
skip_col.button("Skip", key="skip", shortcut="S", on_click=decide, args=(question.id, "skipped"),
                width="stretch")
undo_col.button("Undo", key="undo", shortcut="U", on_click=undo, width="stretch")

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
                          args=(question.id, passage.chunk_id, label.RELEVANT))
                c2.button("Partly relevant", key=f"find_part_{passage.chunk_id}", on_click=grade,
                          args=(question.id, passage.chunk_id, label.PARTLY))
