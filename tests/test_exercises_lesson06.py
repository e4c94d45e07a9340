"""Lesson 06's exercises: every checker accepts a right answer and rejects plausible mistakes."""


from mmlearn import diffusion

# ---------------------------------------------------------------- lesson 06's exercise checkers

def test_lesson06_checkers_accept_the_solutions_and_teach_on_mistakes():
    from mmlearn.exercises import lesson06

    assert lesson06.q1.check("b").correct and lesson06.q1.check(" B ").correct
    for wrong in "ac":
        feedback = lesson06.q1.check(wrong)
        assert feedback.status == "incorrect" and "Run the cell below" in feedback.message
    assert lesson06.q2.check(diffusion.add_noise).correct
    swapped = lambda x0, t, noise, s: diffusion.add_noise(noise, t, x0, s)  # noqa: E731
    assert lesson06.q2.check(swapped).status == "incorrect"
    no_sqrt = lambda x0, t, noise, s: (s.alpha_bar[t].float().view(-1, 1, 1, 1) * x0  # noqa: E731
                                       + (1 - s.alpha_bar[t].float().view(-1, 1, 1, 1)) * noise)
    assert lesson06.q2.check(no_sqrt).status == "incorrect"
    assert lesson06.q3.check(lambda u, c, s: u + s * (c - u)).correct
    feedback = lesson06.q3.check(lambda u, c, s: c + s * (c - u))
    assert feedback.status == "incorrect" and "unconditional" in feedback.message
    feedback = lesson06.q3.check(lambda u, c, s: (1 + s) * c - s * u)  # Ho & Salimans' w = s - 1
    assert feedback.status == "incorrect"
