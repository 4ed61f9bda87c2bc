"""Copy bias: which next tokens a begun copy of the answer gets nudged toward."""

import numpy as np

from bot.voice.copy_bias import CopyBias

# Token ids standing for: "Go to Billing → Change plan [ 1 ] . Seats cost 17 ."
ANSWER = [10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23]


def test_a_begun_copy_is_pushed_to_its_next_token():
    copying = CopyBias(ANSWER, 1.0)
    # The reply wrote "... Change plan": the answer goes on with "[".
    assert copying.next_tokens([99, 14, 15]) == {16}


def test_one_shared_token_is_not_yet_a_copy():
    copying = CopyBias(ANSWER, 1.0)
    assert copying.next_tokens([99, 15]) == set()
    assert copying.next_tokens([15]) == set()
    assert copying.next_tokens([]) == set()


def test_the_longest_copied_run_decides_where_the_copy_goes_on():
    # "a b c" occurs twice; only the second occurrence matches three tokens back.
    answer = [1, 2, 3, 4, 7, 1, 2, 3, 5]
    copying = CopyBias(answer, 1.0)
    assert copying.next_tokens([7, 1, 2, 3]) == {5}
    assert copying.next_tokens([9, 1, 2, 3]) == {4, 5}


def test_the_bias_is_added_to_those_tokens_only_and_the_input_is_left_alone():
    logits = np.zeros(30, dtype=np.float32)
    biased = CopyBias(ANSWER, 2.5).apply(logits, [13, 14, 15])
    assert biased[16] == 2.5
    assert np.count_nonzero(biased) == 1
    assert not logits.any()


def test_strength_zero_is_plain_greedy_decoding():
    logits = np.arange(30, dtype=np.float32)
    assert CopyBias(ANSWER, 0.0).apply(logits, [13, 14, 15]) is logits


def test_a_copy_bias_can_change_the_greedy_choice():
    logits = np.zeros(30, dtype=np.float32)
    logits[2] = 0.5  # the model slightly prefers ending the clause
    biased = CopyBias(ANSWER, 1.0).apply(logits, [14, 15])
    assert int(np.argmax(biased)) == 16
