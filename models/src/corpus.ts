/** Small built-in English text the fixture BPE merges are learned from (deterministic). */
export const BPE_TRAINING_TEXT = `The quick brown fox jumps over the lazy dog. A small model can still be useful when it is fast.
Speculative decoding uses a small draft model to propose tokens and a larger target model to verify them.
When the draft is right, the target accepts several tokens at once, and the answer comes out faster.
The key and value cache stores the attention state of every token that the model has already seen.
If the cache grows too large, we can drop the entries that matter least and keep the ones that matter most.
Each kept entry keeps its original position, and new tokens continue at the true next position.
In the beginning there was a simple question: how can we make language models run well on ordinary computers?
The answer is not one trick but many small ones that work together. We measure, we compare, and we try again.
Once upon a time, in a quiet village by the sea, there lived an old man who told stories to the children.
Every evening they would gather around him, and he would tell them about the stars, the wind, and the water.
"Where do the stars go in the morning?" asked the youngest girl. The old man smiled and said that they are
always there, even when we cannot see them, just as the things we learn stay with us when we forget them.
The weather today is warm and sunny, with a light wind from the west. Tomorrow there will be some rain.
Please write a short summary of the following text, and then answer the questions below in your own words.
What is the capital of France? Paris is the capital of France, and it is known for its art and its food.
Numbers like 1, 2, 3, 10, 42, 100 and 2024 appear in text, as do dates such as 12 May and times like 9:30.
This is a test of the tokenizer. It should handle words, spaces, punctuation, and new lines without trouble.
I think that the best way to learn something is to do it, to make mistakes, and to learn from them.
You are a helpful assistant. The user asks a question and the assistant gives a clear and honest answer.
They said that it would be done by the end of the week, but there is still a lot of work left to do.
`;
