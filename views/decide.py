import datetime as dt

import plotly.graph_objects as go
import streamlit as st

from core.deciding.decision import load, reads_the_curve, recommend, too_few
from core.deciding.report import headline, reasons_markdown, sections, to_html, to_markdown
from core.training.curve import measured_need
from views.common import escape, explained, plot, store

st.title("RAG or fine-tuning?")
st.caption("Answer what you know; the recommendation updates as you go. Each option's weight and "
           "its source are in core/data/questionnaire.yaml, which you can edit.")

with explained():
    questionnaire = load()
    valid = {q.id: {o.id for o in q.options} for q in questionnaire.questions}
    if "answers" not in st.session_state:  # a shared link, or a fresh visit
        st.session_state["answers"] = {k: v for k, v in st.query_params.to_dict().items()
                                       if v in valid.get(k, ())}
    answers: dict[str, str] = st.session_state["answers"]

    def remember(question_id: str) -> None:
        value = st.session_state[f"q_{question_id}"]
        if value is None:
            answers.pop(question_id, None)
        else:
            answers[question_id] = value
        st.query_params.from_dict(answers)

    st.query_params.from_dict(answers)
    result_area = st.container()
    st.divider()
    left, right = st.columns(2)
    for i, question in enumerate(questionnaire.questions):
        ids = [o.id for o in question.options]
        labels = {o.id: o.label for o in question.options}
        column = left if i % 2 == 0 else right
        column.radio(f"{i + 1}. {question.text}", ids, format_func=labels.get,
                     index=ids.index(answers[question.id]) if question.id in answers else None,
                     key=f"q_{question.id}", on_change=remember, args=(question.id,))
    if st.button("Start over"):
        st.session_state["answers"] = {}
        st.query_params.clear()
        for question in questionnaire.questions:
            st.session_state.pop(f"q_{question.id}", None)
        st.rerun()

    with result_area:
        wait = too_few(answers, questionnaire)
        if wait:
            st.info(f"{wait[0].upper()}{wait[1:]}.", icon=":material/quiz:")
            st.stop()
        result = recommend(answers, questionnaire)
        recommendation, runner_up, _ = headline(result)
        st.success(f"{recommendation}  \n{runner_up}", icon=":material/recommend:")
        info, chart = st.columns([3, 2])
        with info:
            st.markdown("**Why**\n" + reasons_markdown(result))
            show = {"Missing before going further": lambda m: st.warning(m, icon=":material/checklist:"),
                    "Notes": lambda n: st.info(n, icon=":material/info:")}
            for heading, items in sections(result):
                if heading in show:
                    for item in items:
                        show[heading](item)
                else:
                    st.markdown(f"**{heading}:**\n" + "\n".join(f"- {item}" for item in items))
            need = measured_need(store()) if reads_the_curve(result) else None
            if need:  # the team's own curve in place of the guides' fixed numbers
                st.info(escape(need), icon=":material/trending_up:")
        with chart:
            figure = go.Figure(go.Bar(x=["Prompting", "RAG", "Fine-tuning"],
                                      y=[result.scores[a] for a in "PRF"],
                                      marker_color=["#90a4ae", "#1976d2", "#7b1fa2"],
                                      text=[result.scores[a] for a in "PRF"], textposition="outside"))
            figure.update_layout(height=260, margin=dict(t=10, b=10), yaxis_title="score")
            plot(figure, width="stretch")
        if result.measurable:
            st.page_link("views/corpus.py", label="Measure it on your documents",
                         icon=":material/science:")
        today = dt.date.today()
        d1, d2, _ = st.columns([1, 1, 2])
        d1.download_button("Report (Markdown)", to_markdown(answers, result, questionnaire, today),
                           f"assessment-{today}.md")
        d2.download_button("Report (HTML, printable)", to_html(answers, result, questionnaire, today),
                           f"assessment-{today}.html", mime="text/html")
        st.caption("Share these answers: copy the page address; it holds them.")
