"""Phrase lists of the rule-based text branch (``rules-v1``, see ``pipeline/text_cues.py``).

Every entry is a regular-expression fragment matched against *normalised* text
(:func:`pipeline.text_cues.normalize_text`): NFKC, case-folded, punctuation turned into spaces,
runs of spaces collapsed, and no space left next to a Chinese character (so "按 1", "按1" and
"按１" all read "按1"). An entry whose first or last character is an ASCII letter or digit gets a
word boundary on that side ("rate" does not fire inside "separate"); Chinese entries match
anywhere. Most entries are plain phrases; a few use ``.{0,n}`` gaps or alternations.

Weighted lists hold ``(pattern, weight)`` pairs. A sales/topic weight of 1.0 is a phrase that on
its own says "this is that kind of pitch"; 0.5 is a supporting word that also occurs in neutral
talk. Each distinct pattern counts once per call, so a replayed script does not add up.

The lists were written from general knowledge of telemarketing and robocall scripts, the
project's sales-line scripts and the "dev" half of the FTC robocall transcripts
(``sha1(split_group) % 2 == 0``); ``bench/text_rules_report.py`` reports both halves.
"""

from __future__ import annotations

# Chinese and Arabic numerals, and English number words, as they come out of Whisper.
ZH_NUM = "[0-9零〇一二两三四五六七八九十百千万]"
EN_NUM = "(?:[0-9]|one|two|three|four|five|six|seven|eight|nine|zero|pound|star)"

# --- Sales pitch cues (language-independent list; both languages are always searched) --------
SALES_PHRASES: tuple[tuple[str, float], ...] = (
    # English: offers, prices, urgency, openers, calls to action
    ("special offer", 1.0),
    ("limited time", 1.0),
    ("free quote", 1.0),
    ("free (?:estimate|consultation|review|valuation|trial|lessons?|session|gift|upgrade)", 1.0),
    ("no (?:cost|obligation|fees|collateral required)|(?:no|zero|0) (?:money|dollars) down", 1.0),
    ("(?:debt|tax) relief|(?:is|are) (?:now )?available", 0.5),
    (
        "(?:a|the) lower (?:\\w+ )?(?:rate|payment|premium|price|bill)s?|(?:could|can|will) save",
        0.5,
    ),
    ("(?:zero|0) ?(?:%|percent) (?:interest|apr)", 1.0),
    ("pre ?(?:approved|selected|qualified)", 1.0),
    (
        "(?:you|your \\w+) (?:may|might|could|will) (?:also )?(?:qualify|be (?:eligible|entitled))",
        1.0,
    ),
    ("you (?:are|re) (?:now )?(?:eligible|qualified|pre ?approved|selected)", 1.0),
    ("(?:lower|reduce|cut) your (?:\\w+ )?(?:rate|payment|premium|bill|interest)", 1.0),
    ("save (?:money|up to|hundreds|thousands|on your)", 1.0),
    ("discount", 1.0),
    ("promotion", 0.5),
    ("offer", 0.5),
    ("(?:\\$ ?[0-9]+|[0-9]+ dollars)(?: [0-9]+)? (?:a|per) (?:month|day|week|year)", 1.0),
    (
        "(?:starting|start|starts|as low as|only|just) (?:at |from )?"
        "(?:\\$ ?[0-9]+|[0-9]+ dollars)",
        1.0,
    ),
    ("act now", 1.0),
    ("call (?:us )?(?:now|today|back today)", 0.5),
    ("don t miss", 0.5),
    ("sign up today", 1.0),
    ("(?:courtesy|follow up) call", 1.0),
    ("final notice", 0.5),
    ("(?:expires?|ends?) (?:today|soon|this week)", 0.5),
    ("spots? (?:are )?(?:limited|filling up)|filling up fast", 1.0),
    ("(?:this is|my name is|it s) [a-z]+ (?:\\w+ )?(?:from|with|calling)", 1.0),
    (
        "(?:i m|i am|we re|we are) calling "
        "(?:from|about|on behalf|to let you know|homeowners|parents)",
        1.0,
    ),
    ("calling on behalf of", 1.0),
    ("(?:are you|would you be) interested", 1.0),
    ("do you have a (?:minute|moment|few minutes)", 1.0),
    ("(?:licensed|enrollment) (?:agent|advisor|specialist)", 1.0),
    ("speak (?:with|to) (?:a|an|our) (?:\\w+ )?(?:specialist|advisor|agent|representative)", 0.5),
    ("your (?:area|neighborhood|community)", 0.5),
    ("homeowners?", 0.5),
    ("free", 0.5),
    ("complimentary", 1.0),
    ("reward|cash back", 0.5),
    # robocall / telemarketing openers and framing
    ("(?:we ve|we have) been trying to (?:contact|reach) you", 1.0),
    ("you (?:are|re) receiving this call|the purpose of (?:this|the|my) call", 1.0),
    ("this call is (?:to|from|regarding|about|in regards?|in reference)", 1.0),
    ("(?:dear|valued) (?:customer|member)|thank you for choosing", 1.0),
    ("(?:our|my) records (?:show|indicate)|we noticed|to (?:let you know|inform you)", 0.5),
    ("(?:important|quick) (?:notice|message|reminder|call|question)|this is a reminder", 0.5),
    ("just wanted to|i d love to|follow(?:ing)? up|quick survey", 0.5),
    ("would you (?:consider|like)|are you (?:paying|struggling|turning|looking|thinking)", 1.0),
    ("(?:see|find out) (?:if|how much|what)|to (?:see|check) (?:if|your eligibility)", 0.5),
    ("(?:if|you|to) qualify|eligib(?:le|ility)|entitled to", 0.5),
    ("we can help|help you (?:with|save|get|choose|lower|raise)|let us help", 1.0),
    ("(?:are )?(?:now )?available (?:in your|for you|to you)|standing by", 1.0),
    ("get (?:approved|covered|certified|started)|(?:sign|signing) up|enroll(?:ment)?", 0.5),
    ("opportunity|no experience|payment plans?|low monthly payment|first \\w+ (?:is )?free", 0.5),
    ("call (?:us|me) back|give (?:us|me) a call|your earliest convenience|reserve", 0.5),
    ("(?:your|our) (?:options|plans?|program|team|specialists?|consultants?)", 0.5),
    (
        "your (?:\\w+ )?(?:vehicle|car|warranty|home|house|property|credit|debt|loan|balance|"
        "insurance|coverage|medicare|premium|bill|account|order|child|family|benefits)",
        0.5,
    ),
    # Chinese: 开场白, 优惠, 价格, 紧迫感, 行动号召
    (
        "(?:您好|你好)?我是.{0,12}"
        "(?:公司|银行|中心|平台|机构|顾问|专员|客服|经理|老师|中介|售楼处)",
        1.0,
    ),
    ("(?:这边|这里)是.{0,12}(?:公司|中心|店|处|平台|机构|银行)", 1.0),
    ("我们(?:这边)?是.{0,10}(?:公司|机构|中介|平台|银行)", 1.0),
    ("打扰(?:您|一下|了)", 1.0),
    ("耽误您", 1.0),
    ("优惠", 1.0),
    ("特价|特惠|降价|直降|清仓", 1.0),
    ("(?:打|享|再享)?" + ZH_NUM + "{1,2}折", 1.0),
    ("限时", 1.0),
    ("名额有限|先到先得|数量有限|仅限|最后(?:一批|" + ZH_NUM + "{1,2}(?:天|个|套|名))", 1.0),
    ("免费", 0.5),
    ("(?:就|还|即|都)送|赠送|送.{0,6}(?:礼品|礼|卡|课|油)", 1.0),
    ("(?:低至|只要|仅需|只需|低息|月供)", 1.0),
    ("首付", 1.0),
    ("(?:贷款|借款|授信|预授信)额度", 1.0),
    ("活动", 0.5),
    ("了解一下", 1.0),
    ("(?:有|感)兴趣", 1.0),
    ("需要(?:我)?(?:帮您|为您|给您)", 1.0),
    ("(?:方便|需要|考虑).{0,8}吗", 0.5),
    ("恭喜您|幸运(?:客户|用户)", 1.0),
    ("领取", 0.5),
    ("欢迎(?:来电|您)", 0.5),
    ("(?:现在|本周|今天|即日)(?:购买|报名|签约|认购|续保|申请|办理|下单|到店)", 1.0),
    ("加(?:您|你)?微信", 1.0),
    ("您", 0.5),
    ("我们(?:这边)?(?:这款|有一款|有一批|推出|提供|可以帮您|都能|可以为您)", 1.0),
    ("(?:给|为|帮)您(?:介绍|推荐|办理|预留|开通|评估|安排)|介绍一下|详细介绍|了解详情", 1.0),
    ("请问您|您之前|您名下|您的.{0,6}(?:即将|快要?)?到期", 0.5),
    ("一站式|包(?:过|就业|教会)|保过|高价回收|上门|当天(?:申请|放款|付款)|最快", 0.5),
    ("(?:火热|正在)(?:报名|招生|预售)|只剩|报.{1,2}送|签约|认购|试听|体验名额", 0.5),
    ("办理|申请|预约|咨询|推荐", 0.5),
    ("急用钱|不看征信|不查流水|秒到账|(?:最快|当天).{0,4}到账|随借随还", 1.0),
)

# --- Topics -----------------------------------------------------------------------------------
# English script categories map onto topics as: car_warranty -> car; health_insurance and
# medicare -> insurance; loan_credit -> loan (so do mortgage/refinance lines, wherever they
# are filed); real_estate -> real_estate; education -> education; solar -> other (energy has no
# topic of its own); press_1 -> whatever the rest of the line says, "other" when nothing.
# Chinese "generic" lines -> other. Impersonation, fake orders, arrests, parcels and prizes
# -> scam.
TOPICS: tuple[str, ...] = (
    "real_estate", "insurance", "loan", "car", "education", "other", "scam"
)  # fmt: skip
# (topic, pattern, weight)
TOPIC_PHRASES: tuple[tuple[str, str, float], ...] = (
    ("real_estate", "楼盘|房产|房源|置业|买房|购房|看房|学区房|二手房|售楼|认筹|开盘|样板间", 1.0),
    ("real_estate", "公寓|别墅|洋房|商铺|现房|期房|户型|平米|产权|过户|房地产|地产|中介|装修", 0.5),
    ("real_estate", "业主|出租|租房|房子|房价|新房|度假房|小区|两居室|三居室|落户|租金", 0.5),
    ("real_estate", "real estate|realty|realtor|open house|listing|property management", 1.0),
    ("real_estate", "(?:sell(?:ing)?|buy(?:ing)?) your (?:home|house|property)|landlord", 1.0),
    ("real_estate", "we buy houses|cash buyer|home values?|townhomes?|condos?", 1.0),
    ("real_estate", "vacation rental", 1.0),
    ("real_estate", "property|properties|houses?|buyers", 0.5),
    ("insurance", "保险|车险|医疗险|意外险|重疾险|寿险|年金险|防癌险|财产险|投保|保单|续保", 1.0),
    ("insurance", "保费|保额", 1.0),
    ("insurance", "意外保障|医疗保障|健康告知", 1.0),
    ("insurance", "理赔|保障|报销|社保|分红", 0.5),
    ("insurance", "insurance|medicare|medicaid|health (?:plans?|coverage|benefits)", 1.0),
    ("insurance", "final expense|licensed agent|senior benefits|burial|supplement", 1.0),
    ("insurance", "beneficiar(?:y|ies)", 1.0),
    ("insurance", "premiums?|copays?|deductible|dental|vision|prescriptions?", 0.5),
    ("insurance", "open enrollment|coverage|covered|policy|benefits|plans?", 0.5),
    (
        "loan",
        "贷款|借款|借钱|放款|授信|额度|月息|低息|免息|利息|利率|征信|还款|逾期|提额|抵押",
        1.0,
    ),
    ("loan", "信用卡|资金周转|资金需求|欠款|消费金融|经营贷|信用贷|车贷|房贷|公积金", 1.0),
    ("loan", "分期|金融|到账|提现|身份证", 0.5),
    ("loan", "loans?|credit cards?|interest rates?|debts?|credit score|line of credit", 1.0),
    ("loan", "lending|refinanc\\w*|mortgage|home equity|working capital|funding", 1.0),
    ("loan", "forgiveness|consolidat\\w*", 1.0),
    ("loan", "balance|credit|payments?|collateral|financial aid|rates?|creditors?|cash", 0.5),
    (
        "car",
        "汽车|车型|新车|试驾|购车|买车|二手车|4s店|驾校|学车|年检|车展|延保|贴膜|车衣|爱车",
        1.0,
    ),
    ("car", "保养|油耗|车辆|车位|租车|以旧换新|发动机|变速箱|充电桩|车", 0.5),
    ("car", "vehicles?|cars?|auto|warranty|dealer(?:ship)?|drivers?", 1.0),
    ("car", "engine|transmission|breakdown|repairs?", 0.5),
    ("education", "教育|培训|课程|辅导|试听|学历|考证|考研|留学|学员|开班|招生|学费|公开课", 1.0),
    ("education", "资格证|辅导班|冲刺班|衔接班|培训班|兴趣班|提高班|暑假班|寒假班", 1.0),
    ("education", "外教|口语|英语|美术|舞蹈|钢琴|书法|编程|拼音|识字|算术|学一门", 0.5),
    ("education", "课|老师|孩子|成绩|学习|报名|教材|学信网", 0.5),
    ("education", "school|degree|courses?|classes|tutors?|tutoring|admissions|semester", 1.0),
    ("education", "scholarship|education|accredited|job placement", 1.0),
    ("education", "registration|learn|students?|teachers?|graduate|grants?", 0.5),
    ("education", "certified|certification|enrollment|training|career|lessons?|camp", 0.5),
    ("education", "academy|program", 0.5),
    ("other", "话费|流量|套餐|积分|会员|宽带|满意度调查|礼品", 1.0),
    ("other", "solar|panels?|electric bill|energy|utility|rebate|hotel|resort|cruise", 1.0),
    ("other", "vacation", 1.0),
    ("other", "(?:complimentary|free|hotel) stay|electric bills?|roof", 1.0),
    ("other", "internet|mobile|cable|directv|spectrum|survey|membership", 0.5),
    ("scam", "快递|包裹|签收|退回|海关|公安|检察院|法院|涉嫌|洗钱|冻结|安全账户|验证码|中奖", 1.0),
    ("scam", "退款", 1.0),
    ("scam", "social security|warrant|arrest|legal (?:action|enforcement|consequences)", 1.0),
    ("scam", "suspend(?:ed)?|suspension|fraudulent|suspicious|investigation|officer", 1.0),
    ("scam", "federal agent|amazon|apple (?:support|id)|icloud|unauthori[sz]ed", 1.0),
    ("scam", "order (?:placed|number|id)", 1.0),
    ("scam", "(?:authori[sz]e|cancel|approve|confirm) (?:this|the|your) (?:order|payment)", 1.0),
    ("scam", "(?:authori[sz]e|cancel|approve|confirm) (?:this|the|your) transaction", 1.0),
    ("scam", "(?:has been|been) charged|gift cards?|irs|customs|seized|prize", 1.0),
    ("scam", "you (?:have|ve) won|parcel|international express|courier|signed for", 1.0),
    ("scam", "package|delivered|delivery", 0.5),
    ("scam", "disconnect\\w*|interruption|past due|delinquent|account", 0.5),
)


# --- Scripted / IVR phrasing ------------------------------------------------------------------
# Key presses and menu choices (转人工): what an IVR menu or an auto-dialler asks for. A live
# agent says them too, but only for a later call ("if the call drops, dial the hotline again
# and press 3"), so one does not count when the text just before it, up to KEY_CONTEXT_CHARS,
# ends in a LATER_CALL instruction (issue 13: 3 of 3 human lines with a key press in the text
# corpus and the held-out set, 0 of 729 robot lines). "Give us a call back at 555-0100. Press
# 1 ..." is a menu after a call-back number, so English needs "and"/"then" to join the two.
KEY_PRESSES: tuple[str, ...] = (
    "press (?:the )?(?:number |key )?" + EN_NUM,
    # "按1" but not "按10%", "按3折", "按一下", "按时"
    "按(?:[0-9#*](?![0-9%.]|折|成|元|月|年|天|倍)|[一二三四五六七八九零〇](?![下次遍按些]))",
    # "请按#号键", "请按语音提示", not "请按合同约定", "请按页面上的提示" (an agent guiding)
    "请按(?:[#*]|井号|星号|语音提示|提示音)",
    "按(?:[0-9#*]|井|星)号?键",
    "转人工",  # a menu choice too: "您拨打客服热线再转人工就行" is an agent's advice
)
LATER_CALL = (
    "(?:(?:拨打|重新拨|回拨|打(?:我们的?)?(?:热线|电话|客服)).{0,12}"
    "|(?<![a-z])(?:dial(?:ing)?|call(?:ing)?)(?: [a-z0-9]+){0,6} (?:and|then) )$"
)
KEY_CONTEXT_CHARS = 40
# Strong, besides the key presses: what only an IVR or an auto-dialler says (self-declared
# automation, opt-out lists).
SCRIPTED_STRONG: tuple[str, ...] = (
    "this is (?:an|a) (?:automated|recorded|pre ?recorded|computer generated) (?:message|call)",
    "(?:an|this) automated (?:message|call|notification)",
    "(?:artificial intelligen\\w*|notification) bot|i m a robot",
    "to (?:hear|listen to) this (?:message )?again",
    "(?:be|get) (?:placed|put|removed) (?:on|from) (?:our|the) (?:do not call |dnc )?list",
    "do not call list",
    "for english (?:inquiries )?please press",
    "回复?[a-z]{1,2}退订|退订请回复|如需退订|回复退订",
    "系统自动拨打|自动语音|请勿回拨|语音通知|智能客服|智能语音|语音助手",
)
# Weak: template phrasing of dialers and IVR queues that a person on the phone seldom says.
# Not the courtesy and line-check formulas every call-centre agent says ("please hold", "can you
# hear me", "感谢您的耐心", "祝您生活愉快", "请保持电话畅通", "稍后会有专人与您联系"). In the
# text corpus they were in 7 of 751 real robocalls ("stay on the line"), in 10 lines of the
# project's own robot scripts and in 7 human lines, and they gave robot evidence to 18 of 20
# held-out agent lines (issue 13).
SCRIPTED_WEAK: tuple[str, ...] = (
    "your call is important to us|all (?:of )?our agents are (?:currently )?busy",
    "i repeat",
    "如不需要.{0,4}挂机|不需要.{0,6}直接挂(?:机|断)",
)

# --- Queue announcements ------------------------------------------------------------------------
# What a call centre's queue plays while the caller waits for an agent: hold and wait messages,
# recording notices. An agent says many of these too ("please hold while I check"), so they are
# no evidence on their own: ``pipeline.queue`` sets aside only a stretch the caller channel
# *replays* (the same audio twice: a recording) whose words are mostly these phrases.
QUEUE_ANNOUNCEMENT: tuple[str, ...] = (
    "thank you for (?:holding|waiting|your patience|calling(?: [a-z]+){0,4})",
    "your call is (?:very )?important to us",
    "(?:please )?(?:stay|remain|hold) on the line",
    "please (?:continue to )?hold",
    "(?:the|our) (?:next|first) available (?:agent|representative|operator|advisor|associate)"
    "(?: will be with you(?: shortly| in a moment| as soon as possible)?)?",
    "all (?:of )?our (?:agents|representatives|operators|advisors|lines) are (?:currently )?"
    "(?:busy|assisting other (?:callers|customers))",
    "(?:your call|calls) will be answered in the order (?:it was|they were|they are) received",
    "(?:your |the )?(?:estimated )?wait(?:ing)? time is(?: approximately| about)?"
    "(?: [a-z0-9]+){0,3} minutes?",
    "you are (?:caller )?number [a-z0-9]+ in (?:the )?(?:queue|line)",
    "(?:this|your) call (?:may|will) be (?:monitored|recorded)(?: (?:and|or) (?:monitored|"
    "recorded))?(?: for (?:quality|training)(?: (?:and|or) (?:quality|training))?"
    "(?: purposes)?)?",
    # Mandarin with short gaps: the ASR mishears words of synthetic prompts ("耐心" as "那一心")
    "感谢您的.{0,3}等待|感谢(?:您的)?来电",
    "您的.{0,3}对我们(?:来说)?(?:非常|很)?重要",
    "请(?:不要|勿)挂.",
    "(?:座席|坐席|客服|话务员|人工)(?:人员)?(?:正|都)?(?:忙|在忙|繁忙)",
    "请(?:您)?稍(?:候|等)",
    "正在为您(?:转接|接通)(?:人工.{0,2})?",
    "(?:将|会).快为您.{0,2}(?:接通|转接|服务)(?:人工.{0,2})?",
    "(?:您)?(?:前面|前方)(?:还有|尚有)[0-9零一二两三四五六七八九十]+位",
    "(?:本次)?通话(?:可能|将|会)(?:被)?录音",
)

# The called line's own recorded menu (issue 13): what you hear when you call a company, before
# an agent answers ("Thank you for calling ... For billing, press two"). A dialer that calls you
# does not thank you for calling: of the 751 robocall transcripts in the shared data, one says
# it, and there it is the live agent the robot put through. Matched like QUEUE_ANNOUNCEMENT.
INBOUND_GREETING: tuple[str, ...] = (
    "(?:thank you|thanks) for (?:calling|contacting)",
    "(?:welcome to|you have reached)(?: [a-z']+){1,4}",
    # the ASR may write 致电 as its homophone 至电
    "(?:欢迎|感谢)(?:您)?(?:的)?(?:[致至]电|来电|拨打)",
)
_KEY_EN = "(?:[0-9]|zero|one|two|three|four|five|six|seven|eight|nine|star|pound)"
LINE_MENU: tuple[str, ...] = (
    f"(?:for|to)(?: [a-z']+){{1,6}} (?:please )?press {_KEY_EN}",
    f"press {_KEY_EN} (?:for|to)(?: [a-z']+){{1,6}}",
    f"(?:please )?press {_KEY_EN}",
    "(?:please )?listen carefully as (?:our )?(?:menu )?options have (?:recently )?changed",
    # any character for the key: the ASR mishears a synthetic voice's digits (零 as 赢, 八 as 吧)
    "[\u4e00-\u9fff]{2,10}请按.(?:号)?(?:键)?",
    "请按.(?:号)?(?:键)?",
)

# --- Disfluency -------------------------------------------------------------------------------
# Matched against case-folded NFKC text *with* punctuation kept, because Whisper sets fillers
# off with commas ("you know," "那个，").
FILLERS_EN: tuple[str, ...] = (
    "(?<![a-z'])(?:um+|uh+|uhm+|erm+|er|hmm+|mm+|ah)(?![a-z'])",
    "(?:^|[,.;!?]\\s*|\\b(?:and|but|so) )(?:you know|i mean)(?=\\s*[,.;!?]|\\s*$)",
)
FILLERS_ZH: tuple[str, ...] = (
    "[嗯呃]",
    "(?:^|(?<=[，,。.？?！! ]))(?:啊|额|这个|那个|就是|然后)(?=[，,。.？?！! ]|$)",
    "(?:那个|就是|然后|这个)(?=那个|就是|然后|这个)",
)
# Self-repairs: explicit markers. Repeated words are found in code (see ``_count_repairs``).
REPAIRS: tuple[str, ...] = (
    "(?<![a-z'])([a-z]{1,4})- +\\1",  # "wh- what", "th- the"
    "(?<![a-z'])(?:let me rephrase|what i meant|i mean to say|sorry i mean)(?![a-z'])",
    "我是说|我的意思是|不是不是|不对不对",
    "(我们|你们|我|你|他|她|这|那|就|因为|所以|但是|如果)\\1",  # doubled fillers: FILLERS_ZH
)
# English words that are doubled on purpose ("had had", "bye bye") and are not a restart.
INTENDED_DOUBLES: frozenset[str] = frozenset(
    {"had", "that", "is", "bye", "ha", "very", "really", "so", "there", "do", "no", "yes"}
)

# --- Reaction to the callee (stereo only) -----------------------------------------------------
# A caller segment that opens with one of these right after the callee spoke acknowledges them.
# Unambiguous ones count wherever the segment starts with them; short ones ("对", "right") only
# when a pause or punctuation follows ("对于" and "right now" are no acknowledgement).
ACKNOWLEDGEMENTS: tuple[str, ...] = (
    "好的|是的|明白了?|理解|没关系|不好意思|抱歉|没问题|当然",
    "i understand|i see|got it|no problem|of course|no worries|fair enough|understood|sorry",
)
SHORT_ACKNOWLEDGEMENTS: tuple[str, ...] = (
    "对的?|嗯+|哦|好吧?|行|可以|是啊?",
    "okay|ok|sure|yes|yeah|yep|right|great|alright|all right|certainly|absolutely|oh",
)
# Callee turns that a live caller cannot talk over without answering.
CHALLENGES: tuple[str, ...] = (
    "机器人|真人|人工吗|录音吗|你是谁|您是谁|哪位|哪里打|什么公司|怎么知道我|号码哪来",
    "are you (?:a |an )?(?:robot|real person|real|human|machine|recording|computer|bot|ai)",
    "is this (?:a |an )?(?:robot|recording|real person|machine|computer|bot)",
    "who is this|who are you|who s calling|what company|where are you calling from",
    "how did you get my number",
)
# Words in the caller's answer that respond to a question ("who is this?" -> "this is Mike").
ANSWER_MARKERS: tuple[str, ...] = (
    "我是|我们是|我姓|不是|是的|对的|没有|不会",
    "this is|my name|i m|i am|we are|we re|yes|no|not",
)
# Words too common to count as "the caller echoed what the callee said".
STOPWORDS_EN: frozenset[str] = frozenset(
    """a an the and or but if so to of in on at by for with from about as into over after
    before i me my you your yours he him his she her it its we us our they them their this that
    these those is am are was were be been being do does did have has had will would can could
    shall should may might must not no yes yeah okay ok oh um uh hello hi hey what who when
    where why how which there here just really very well right now then than too also all any
    some one two get got go going know think say said want like call calling see thank thanks
    please sorry sure good great let make take tell dont don im youre its thats whats""".split()
)
# Characters that make a Chinese bigram a function-word pair ("我们", "这个", "需要").
FUNCTION_CHARS_ZH: frozenset[str] = frozenset(
    "的了吗呢吧啊呀嘛哦嗯呃是我你您他她它们这那个就不也都在有和与么什怎哪谁要会能可以一下好"
)
