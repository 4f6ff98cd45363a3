/**
 * Word lists for the natural-language RULER generator. No public-domain prose ships on the machines this runs
 * on (checked: no Gutenberg texts under /usr/share), so the essay-style haystack is generated from these lists
 * by a seeded sentence grammar (see `essaySentence`), and RULER's repeated "noise" paragraph is used verbatim.
 */
export const NOISE_SENTENCES = Object.freeze([
  'The grass is green.',
  'The sky is blue.',
  'The sun is yellow.',
  'Here we go.',
  'There and back again.',
]);

export const ADJECTIVES = Object.freeze(
  'quiet ancient bright careful distant gentle hollow narrow proud silent steady swift tired wooden golden rusty frozen patient curious honest fearless humble lively modest noble polite rapid rough sharp simple sleepy stern tender vast weary wise brave calm clever eager faint fierce'.split(
    ' ',
  ),
);

export const NOUNS = Object.freeze(
  'river mill harbour lantern garden bridge market orchard valley tower meadow forest village castle island mountain library kitchen workshop chapel cottage window ledger compass anchor barrel basket blanket candle carriage chimney cloak engine feather fountain hammer kettle ladder letter mirror needle pencil saddle shovel teapot violin wagon whistle'.split(
    ' ',
  ),
);

export const VERBS = Object.freeze(
  'watched carried repaired painted counted visited measured followed guarded cleaned opened closed mended gathered described remembered borrowed delivered polished sketched'.split(
    ' ',
  ),
);

export const PEOPLE = Object.freeze(
  'the miller|the keeper|an old sailor|the carpenter|a young clerk|the baker|the schoolteacher|a travelling merchant|the shepherd|the blacksmith|the mayor|a fisherman|the weaver|the captain|a farmer'.split(
    '|',
  ),
);

export const TIMES = Object.freeze(
  'before dawn|after the storm|in the late autumn|every Sunday|during the long winter|at first light|when the tide turned|in the spring|after supper|on market days'.split(
    '|',
  ),
);

export const FIRST_NAMES = Object.freeze('Ada Bruno Clara Dmitri Elena Felix Greta Hugo Irene Jonas Karla Lorenzo Marta Nils Olga Pablo Rosa Stefan Tilda Viktor'.split(' '));
export const SURNAMES = Object.freeze('Albrecht Bianchi Castell Dunmore Eriksen Falk Garnier Holm Ivers Jansen Kovac Lindqvist Moreau Novak Ortega Petrov Quist Rinaldi Sorensen Thorne'.split(' '));
export const CITIES = Object.freeze('Ashford Brightwater Coldharbour Dunmere Eastwick Fairhaven Glenrock Highmoor Ironbridge Kingsport Larkfield Millbrook Northgate Oakhurst Redcliff Stonebury Thornwick Westmarch'.split(' '));
export const INSTITUTIONS = Object.freeze('observatory|museum of maps|rowing club|botanical society|clock factory|printing house|glass works|music school|sailing guild|weather station|paper mill|chess club'.split('|'));
