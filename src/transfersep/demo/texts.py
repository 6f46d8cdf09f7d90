"""Public-domain English text for the demo's speech corpus (read aloud by espeak-ng, ``librimix.py``).

Every text here was published before 1900 (in the United States, federal documents are public
domain whatever their age): the Declaration of Independence (1776), the Preamble to the
Constitution (1787) and the Bill of Rights (1791), Lincoln's Gettysburg Address (1863, the Bliss
copy) and Second Inaugural Address (1865), Shakespeare's sonnets 18, 29, 73, 116 and 130 (1609),
and Lewis Carroll's "Jabberwocky" (1871). ``sentences()`` cuts them into the units a reader reads
in one breath.
"""

from __future__ import annotations

import re

DECLARATION = """
When in the Course of human events, it becomes necessary for one people to dissolve the political bands which have
connected them with another, and to assume among the powers of the earth, the separate and equal station to which the
Laws of Nature and of Nature's God entitle them, a decent respect to the opinions of mankind requires that they should
declare the causes which impel them to the separation.
We hold these truths to be self-evident, that all men are created equal, that they are endowed by their Creator with
certain unalienable Rights, that among these are Life, Liberty and the pursuit of Happiness.
That to secure these rights, Governments are instituted among Men, deriving their just powers from the consent of the
governed.
That whenever any Form of Government becomes destructive of these ends, it is the Right of the People to alter or to
abolish it, and to institute new Government, laying its foundation on such principles and organizing its powers in
such form, as to them shall seem most likely to effect their Safety and Happiness.
Prudence, indeed, will dictate that Governments long established should not be changed for light and transient
causes; and accordingly all experience hath shewn, that mankind are more disposed to suffer, while evils are
sufferable, than to right themselves by abolishing the forms to which they are accustomed.
But when a long train of abuses and usurpations, pursuing invariably the same Object evinces a design to reduce them
under absolute Despotism, it is their right, it is their duty, to throw off such Government, and to provide new Guards
for their future security.
Such has been the patient sufferance of these Colonies; and such is now the necessity which constrains them to alter
their former Systems of Government.
The history of the present King of Great Britain is a history of repeated injuries and usurpations, all having in
direct object the establishment of an absolute Tyranny over these States.
To prove this, let Facts be submitted to a candid world.
He has refused his Assent to Laws, the most wholesome and necessary for the public good.
He has forbidden his Governors to pass Laws of immediate and pressing importance, unless suspended in their operation
till his Assent should be obtained; and when so suspended, he has utterly neglected to attend to them.
He has refused to pass other Laws for the accommodation of large districts of people, unless those people would
relinquish the right of Representation in the Legislature, a right inestimable to them and formidable to tyrants only.
He has called together legislative bodies at places unusual, uncomfortable, and distant from the depository of their
public Records, for the sole purpose of fatiguing them into compliance with his measures.
He has dissolved Representative Houses repeatedly, for opposing with manly firmness his invasions on the rights of the
people.
He has refused for a long time, after such dissolutions, to cause others to be elected; whereby the Legislative
powers, incapable of Annihilation, have returned to the People at large for their exercise; the State remaining in
the mean time exposed to all the dangers of invasion from without, and convulsions within.
He has endeavoured to prevent the population of these States; for that purpose obstructing the Laws for
Naturalization of Foreigners; refusing to pass others to encourage their migrations hither, and raising the
conditions of new Appropriations of Lands.
He has obstructed the Administration of Justice, by refusing his Assent to Laws for establishing Judiciary powers.
He has made Judges dependent on his Will alone, for the tenure of their offices, and the amount and payment of their
salaries.
He has erected a multitude of New Offices, and sent hither swarms of Officers to harrass our people, and eat out their
substance.
He has kept among us, in times of peace, Standing Armies without the Consent of our legislatures.
He has affected to render the Military independent of and superior to the Civil power.
He has combined with others to subject us to a jurisdiction foreign to our constitution, and unacknowledged by our
laws; giving his Assent to their Acts of pretended Legislation.
For quartering large bodies of armed troops among us.
For protecting them, by a mock Trial, from punishment for any Murders which they should commit on the Inhabitants of
these States.
For cutting off our Trade with all parts of the world.
For imposing Taxes on us without our Consent.
For depriving us in many cases, of the benefits of Trial by Jury.
For transporting us beyond Seas to be tried for pretended offences.
For taking away our Charters, abolishing our most valuable Laws, and altering fundamentally the Forms of our
Governments.
For suspending our own Legislatures, and declaring themselves invested with power to legislate for us in all cases
whatsoever.
He has abdicated Government here, by declaring us out of his Protection and waging War against us.
He has plundered our seas, ravaged our Coasts, burnt our towns, and destroyed the lives of our people.
In every stage of these Oppressions We have Petitioned for Redress in the most humble terms; our repeated Petitions
have been answered only by repeated injury.
A Prince whose character is thus marked by every act which may define a Tyrant, is unfit to be the ruler of a free
people.
Nor have We been wanting in attentions to our Brittish brethren.
We have warned them from time to time of attempts by their legislature to extend an unwarrantable jurisdiction over
us.
We have reminded them of the circumstances of our emigration and settlement here.
We have appealed to their native justice and magnanimity, and we have conjured them by the ties of our common kindred
to disavow these usurpations, which would inevitably interrupt our connections and correspondence.
They too have been deaf to the voice of justice and of consanguinity.
We must, therefore, acquiesce in the necessity, which denounces our Separation, and hold them, as we hold the rest of
mankind, Enemies in War, in Peace Friends.
And for the support of this Declaration, with a firm reliance on the protection of divine Providence, we mutually
pledge to each other our Lives, our Fortunes and our sacred Honor.
"""

CONSTITUTION = """
We the People of the United States, in Order to form a more perfect Union, establish Justice, insure domestic
Tranquility, provide for the common defence, promote the general Welfare, and secure the Blessings of Liberty to
ourselves and our Posterity, do ordain and establish this Constitution for the United States of America.
Congress shall make no law respecting an establishment of religion, or prohibiting the free exercise thereof; or
abridging the freedom of speech, or of the press; or the right of the people peaceably to assemble, and to petition
the Government for a redress of grievances.
A well regulated Militia, being necessary to the security of a free State, the right of the people to keep and bear
Arms, shall not be infringed.
No Soldier shall, in time of peace be quartered in any house, without the consent of the Owner, nor in time of war,
but in a manner to be prescribed by law.
The right of the people to be secure in their persons, houses, papers, and effects, against unreasonable searches and
seizures, shall not be violated, and no Warrants shall issue, but upon probable cause, supported by Oath or
affirmation, and particularly describing the place to be searched, and the persons or things to be seized.
No person shall be held to answer for a capital, or otherwise infamous crime, unless on a presentment or indictment of
a Grand Jury; nor shall any person be subject for the same offence to be twice put in jeopardy of life or limb; nor
shall be compelled in any criminal case to be a witness against himself, nor be deprived of life, liberty, or
property, without due process of law; nor shall private property be taken for public use, without just compensation.
In all criminal prosecutions, the accused shall enjoy the right to a speedy and public trial, by an impartial jury of
the State and district wherein the crime shall have been committed; to be informed of the nature and cause of the
accusation; to be confronted with the witnesses against him; to have compulsory process for obtaining witnesses in his
favor, and to have the Assistance of Counsel for his defence.
In Suits at common law, where the value in controversy shall exceed twenty dollars, the right of trial by jury shall
be preserved, and no fact tried by a jury, shall be otherwise re-examined in any Court of the United States, than
according to the rules of the common law.
Excessive bail shall not be required, nor excessive fines imposed, nor cruel and unusual punishments inflicted.
The enumeration in the Constitution, of certain rights, shall not be construed to deny or disparage others retained by
the people.
The powers not delegated to the United States by the Constitution, nor prohibited by it to the States, are reserved to
the States respectively, or to the people.
"""

LINCOLN = """
Four score and seven years ago our fathers brought forth on this continent, a new nation, conceived in Liberty, and
dedicated to the proposition that all men are created equal.
Now we are engaged in a great civil war, testing whether that nation, or any nation so conceived and so dedicated, can
long endure.
We are met on a great battle-field of that war.
We have come to dedicate a portion of that field, as a final resting place for those who here gave their lives that
that nation might live.
It is altogether fitting and proper that we should do this.
But, in a larger sense, we can not dedicate, we can not consecrate, we can not hallow this ground.
The brave men, living and dead, who struggled here, have consecrated it, far above our poor power to add or detract.
The world will little note, nor long remember what we say here, but it can never forget what they did here.
It is for us the living, rather, to be dedicated here to the unfinished work which they who fought here have thus far
so nobly advanced.
It is rather for us to be here dedicated to the great task remaining before us; that from these honored dead we take
increased devotion to that cause for which they gave the last full measure of devotion; that we here highly resolve
that these dead shall not have died in vain; that this nation, under God, shall have a new birth of freedom; and that
government of the people, by the people, for the people, shall not perish from the earth.
At this second appearing to take the oath of the presidential office there is less occasion for an extended address
than there was at the first.
Then a statement somewhat in detail of a course to be pursued seemed fitting and proper.
Now, at the expiration of four years, during which public declarations have been constantly called forth on every
point and phase of the great contest which still absorbs the attention and engrosses the energies of the nation,
little that is new could be presented.
The progress of our arms, upon which all else chiefly depends, is as well known to the public as to myself, and it
is, I trust, reasonably satisfactory and encouraging to all.
With high hope for the future, no prediction in regard to it is ventured.
On the occasion corresponding to this four years ago all thoughts were anxiously directed to an impending civil war.
All dreaded it, all sought to avert it.
While the inaugural address was being delivered from this place, devoted altogether to saving the Union without war,
insurgent agents were in the city seeking to destroy it without war, seeking to dissolve the Union and divide effects
by negotiation.
Both parties deprecated war, but one of them would make war rather than let the nation survive, and the other would
accept war rather than let it perish, and the war came.
Neither party expected for the war the magnitude or the duration which it has already attained.
Each looked for an easier triumph, and a result less fundamental and astounding.
Both read the same Bible and pray to the same God, and each invokes His aid against the other.
The prayers of both could not be answered.
That of neither has been answered fully.
Fondly do we hope, fervently do we pray, that this mighty scourge of war may speedily pass away.
With malice toward none, with charity for all, with firmness in the right as God gives us to see the right, let us
strive on to finish the work we are in, to bind up the nation's wounds, to care for him who shall have borne the
battle and for his widow and his orphan, to do all which may achieve and cherish a just and lasting peace among
ourselves and with all nations.
"""

VERSE = """
Shall I compare thee to a summer's day?
Thou art more lovely and more temperate.
Rough winds do shake the darling buds of May, and summer's lease hath all too short a date.
Sometime too hot the eye of heaven shines, and often is his gold complexion dimm'd; and every fair from fair sometime
declines, by chance or nature's changing course untrimm'd.
But thy eternal summer shall not fade, nor lose possession of that fair thou ow'st; nor shall Death brag thou
wander'st in his shade, when in eternal lines to time thou grow'st.
So long as men can breathe or eyes can see, so long lives this, and this gives life to thee.
When, in disgrace with fortune and men's eyes, I all alone beweep my outcast state, and trouble deaf heaven with my
bootless cries, and look upon myself and curse my fate, wishing me like to one more rich in hope, featur'd like him,
like him with friends possess'd, desiring this man's art and that man's scope, with what I most enjoy contented least.
Yet in these thoughts myself almost despising, haply I think on thee, and then my state, like to the lark at break of
day arising from sullen earth, sings hymns at heaven's gate; for thy sweet love remember'd such wealth brings that then
I scorn to change my state with kings.
That time of year thou mayst in me behold when yellow leaves, or none, or few, do hang upon those boughs which shake
against the cold, bare ruin'd choirs, where late the sweet birds sang.
In me thou seest the twilight of such day as after sunset fadeth in the west, which by and by black night doth take
away, Death's second self, that seals up all in rest.
In me thou seest the glowing of such fire that on the ashes of his youth doth lie, as the death-bed whereon it must
expire, consum'd with that which it was nourish'd by.
This thou perceiv'st, which makes thy love more strong, to love that well which thou must leave ere long.
Let me not to the marriage of true minds admit impediments.
Love is not love which alters when it alteration finds, or bends with the remover to remove.
O no! it is an ever-fixed mark that looks on tempests and is never shaken; it is the star to every wand'ring bark,
whose worth's unknown, although his height be taken.
Love's not Time's fool, though rosy lips and cheeks within his bending sickle's compass come; love alters not with his
brief hours and weeks, but bears it out even to the edge of doom.
If this be error and upon me prov'd, I never writ, nor no man ever lov'd.
My mistress' eyes are nothing like the sun; coral is far more red than her lips' red; if snow be white, why then her
breasts are dun; if hairs be wires, black wires grow on her head.
I have seen roses damask'd, red and white, but no such roses see I in her cheeks; and in some perfumes is there more
delight than in the breath that from my mistress reeks.
I love to hear her speak, yet well I know that music hath a far more pleasing sound; I grant I never saw a goddess go;
my mistress, when she walks, treads on the ground.
And yet, by heaven, I think my love as rare as any she belied with false compare.
'Twas brillig, and the slithy toves did gyre and gimble in the wabe: all mimsy were the borogoves, and the mome raths
outgrabe.
Beware the Jabberwock, my son!
The jaws that bite, the claws that catch!
Beware the Jubjub bird, and shun the frumious Bandersnatch!
He took his vorpal sword in hand; long time the manxome foe he sought; so rested he by the Tumtum tree and stood awhile
in thought.
And, as in uffish thought he stood, the Jabberwock, with eyes of flame, came whiffling through the tulgey wood, and
burbled as it came!
One, two! One, two! And through and through the vorpal blade went snicker-snack!
He left it dead, and with its head he went galumphing back.
And hast thou slain the Jabberwock?
Come to my arms, my beamish boy!
O frabjous day! Callooh! Callay!
He chortled in his joy.
"""

WORKS = {"declaration": DECLARATION, "constitution": CONSTITUTION, "lincoln": LINCOLN, "verse": VERSE}
MAX_WORDS = 22  # about 8 s at espeak-ng's default rate: one breath of a reader


def sentences(max_words: int = MAX_WORDS) -> list[tuple[str, str]]:
    """``(work, unit)`` in reading order: each sentence of the texts, a long one cut at its ``;``,
    ``:`` and then ``,`` into pieces of at most ``max_words`` words (pieces stay whole clauses)."""
    out = []
    for work, text in WORKS.items():
        for sentence in re.split(r"(?<=[.!?])\s+", " ".join(text.split())):
            out += [(work, piece) for piece in _cut(sentence, max_words)]
    return out


def _cut(sentence: str, max_words: int) -> list[str]:
    if len(sentence.split()) <= max_words:
        return [sentence]
    for sep in (r"(?<=[;:])\s+", r"(?<=,)\s+"):
        parts = re.split(sep, sentence)
        if len(parts) > 1:
            pieces, cur = [], ""
            for p in parts:
                if cur and len((cur + " " + p).split()) > max_words:
                    pieces.append(cur)
                    cur = p
                else:
                    cur = f"{cur} {p}".strip()
            pieces.append(cur)
            return [q for piece in pieces for q in _cut(piece, max_words)] if len(pieces) > 1 else pieces
    return [sentence]
